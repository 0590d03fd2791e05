/* test_gpu_nvml.c — the gpu module's nvml backend through a fake NVML
 * table: unit conversions, the card found in PCI bus order (not NVML's
 * index) or by UUID, a MIG instance refused, a GPU that disappears (every
 * call NVML_ERROR_GPU_IS_LOST: unknown values, logged once, the VRAM floor
 * no longer applies) and comes back, and init / shutdown pairing. */
#include <math.h>

#include "test_gpu_fakes.h"

static const struct gpu_visible no_lists = {NULL, NULL, NULL};

static void test_nvml_reads_and_converts_units(void **state)
{
    (void)state;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    struct gpu *g = open_fakes("nvml", 1, &no_lists, &cap.log, err, sizeof(err));
    assert_non_null(g);
    assert_string_equal(gpu_backend_name(g), "nvml");
    assert_int_equal(capture_read(&cap), 1);
    /* host GPU 1 in PCI order (buses 01, 41, 81) is NVML's device 0 on bus 41 */
    assert_non_null(strstr(cap.text,
                           "gpu backend: nvml, card 0000:41:00.0 (NVIDIA H200 #0), "
                           "144384 MiB VRAM; llama.gpu is host GPU 1 in PCI bus order\n"));
    struct gpu_reading r;
    assert_int_equal(gpu_read(g, &r), 0);
    assert_int_equal(fnvml.last_device, 0);
    assert_true(r.present);
    assert_string_equal(r.backend, "nvml");
    assert_string_equal(r.name, "NVIDIA H200 #0");
    assert_string_equal(r.pci_bus_id, "0000:41:00.0");
    assert_true(r.vram_valid);
    assert_int_equal(r.vram_total_bytes, 141ull << 30);
    assert_int_equal(r.vram_used_bytes, 5ull << 30);
    assert_float_equal(r.temp_edge_c, 38.0, 1e-9);
    assert_true(isnan(r.temp_junction_c) && isnan(r.temp_mem_c)); /* NVML has one die sensor */
    assert_float_equal(r.power_w, 98.765, 1e-9);
    assert_float_equal(r.busy_percent, 12.0, 1e-9);
    gpu_close(g);
    assert_int_equal(fnvml.inits, 1);
    assert_int_equal(fnvml.shutdowns, 1);
    capture_close(&cap);
}

static void test_nvml_card_by_uuid_and_mig_refused(void **state)
{
    (void)state;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    const struct gpu_visible uuids = {NULL, NULL,
                                      "GPU-cccccccc-0000-0000-0000-000000000000,MIG-0123abcd-0000"};
    struct gpu *g = open_fakes("nvml", 0, &uuids, &cap.log, err, sizeof(err));
    assert_non_null(g);
    assert_int_equal(capture_read(&cap), 1);
    assert_non_null(strstr(cap.text,
                           "card 0000:81:00.0 (NVIDIA H200 #2), 144384 MiB VRAM; "
                           "llama.gpu is entry 0 of inherited CUDA_VISIBLE_DEVICES=GPU-"));
    struct gpu_reading r;
    gpu_read(g, &r);
    assert_int_equal(fnvml.last_device, 2);
    gpu_close(g);

    assert_null(open_fakes("nvml", 1, &uuids, &cap.log, err, sizeof(err)));
    assert_string_equal(err, "gpu backend nvml: cannot read MIG-0123abcd-0000 (MIG instances are "
                             "not read)");
    const struct gpu_visible unknown = {NULL, NULL, "GPU-dddddddd-0000"};
    assert_null(open_fakes("nvml", 0, &unknown, &cap.log, err, sizeof(err)));
    assert_string_equal(err, "gpu backend nvml: no GPU GPU-dddddddd-0000: fake NVML error");
    assert_int_equal(fnvml.inits, 3);
    assert_int_equal(fnvml.shutdowns, 3);
    capture_close(&cap);
}

/* The GPU falls off the bus while the worker runs, then comes back. */
static void test_nvml_gpu_that_disappears(void **state)
{
    (void)state;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    /* rocm-smi sees two AMD GPUs, so GPU 2 can only be NVIDIA's */
    struct gpu *g = open_fakes("auto", 2, &no_lists, &cap.log, err, sizeof(err));
    assert_non_null(g);
    assert_string_equal(gpu_backend_name(g), "nvml");
    capture_read(&cap);

    struct gpu_reading r;
    assert_int_equal(gpu_read(g, &r), 0);
    assert_true(gpu_vram_below_floor(&r, 137ull << 30)); /* 136 GiB free */
    fnvml.read_status = NVML_ERROR_GPU_IS_LOST;
    for (int i = 0; i < 5; i++)
        assert_int_equal(gpu_read(g, &r), -1);
    assert_true(r.present);
    assert_string_equal(r.pci_bus_id, "0000:81:00.0");
    assert_false(r.vram_valid);
    assert_true(isnan(r.temp_edge_c) && isnan(r.power_w) && isnan(r.busy_percent));
    assert_false(gpu_vram_below_floor(&r, 137ull << 30));
    assert_int_equal(capture_read(&cap), 1);
    assert_non_null(strstr(cap.text, "the GPU 0000:81:00.0 answered none of the metrics"));

    fnvml.read_status = NVML_SUCCESS;
    assert_int_equal(gpu_read(g, &r), 0);
    assert_true(r.vram_valid);
    assert_int_equal(capture_read(&cap), 1);
    assert_non_null(strstr(cap.text, "the GPU 0000:81:00.0 answers again"));
    gpu_close(g);
    assert_int_equal(fnvml.inits, fnvml.shutdowns);
    capture_close(&cap);
}

static void test_nvml_no_device(void **state)
{
    (void)state;
    fnvml.devices = 0;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    assert_null(open_fakes("nvml", 0, &no_lists, &cap.log, err, sizeof(err)));
    assert_string_equal(err, "gpu backend nvml: GPU 0 out of range (NVML sees 0 devices)");
    assert_int_equal(fnvml.inits, 1);
    assert_int_equal(fnvml.shutdowns, 1);
    capture_close(&cap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_nvml_reads_and_converts_units, reset_fakes),
        cmocka_unit_test_setup(test_nvml_card_by_uuid_and_mig_refused, reset_fakes),
        cmocka_unit_test_setup(test_nvml_gpu_that_disappears, reset_fakes),
        cmocka_unit_test_setup(test_nvml_no_device, reset_fakes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
