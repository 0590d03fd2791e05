/* test_gpu.c — the gpu module's rocm backend and backend choice: unit
 * conversions, missing sensors, a device that stops answering (logged once
 * each way), init failure, no device and a card out of range, all through a
 * fake rocm-smi-lib (the card found by PCI bus id, not rocm-smi's index);
 * "auto" trying rocm, then nvml, then none with one log line saying why,
 * named backends failing loudly, index -1 meaning none; a test backend
 * through gpu_open_ops; and the real libraries on this machine. */
#include <dlfcn.h>
#include <math.h>

#include "test_gpu_fakes.h"

/* ---- the rocm backend ---- */

static void test_rocm_reads_and_converts_units(void **state)
{
    (void)state;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    struct gpu *g = open_fakes("rocm", 1, NULL, &cap.log, err, sizeof(err));
    assert_non_null(g);
    assert_string_equal(gpu_backend_name(g), "rocm");
    assert_int_equal(capture_read(&cap), 1);
    /* host GPU 1 in PCI order is the card on bus c1: rocm-smi's device 0 */
    assert_non_null(strstr(cap.text, "gpu backend: rocm, card 0000:c1:00.0 (AMD Instinct MI210), "
                                     "65536 MiB VRAM; llama.gpu is host GPU 1 in PCI bus order\n"));

    struct gpu_reading r;
    assert_int_equal(gpu_read(g, &r), 0);
    assert_int_equal(fake.last_index, 0);
    assert_true(r.present);
    assert_string_equal(r.backend, "rocm");
    assert_string_equal(r.name, "AMD Instinct MI210");
    assert_string_equal(r.pci_bus_id, "0000:c1:00.0");
    assert_true(r.vram_valid);
    assert_int_equal(r.vram_total_bytes, 64ull << 30);
    assert_int_equal(r.vram_used_bytes, 3ull << 30);
    assert_float_equal(r.temp_edge_c, 45.0, 1e-9);
    assert_float_equal(r.temp_junction_c, 51.25, 1e-9);
    assert_float_equal(r.temp_mem_c, 60.0, 1e-9);
    assert_float_equal(r.power_w, 123.456789, 1e-9);
    assert_float_equal(r.busy_percent, 37.0, 1e-9);

    gpu_close(g);
    assert_int_equal(fake.inits, 1);
    assert_int_equal(fake.shut_downs, 1);
    assert_int_equal(fnvml.inits, 0); /* auto was not asked for */
    capture_close(&cap);
}

static void test_rocm_missing_sensors_are_nan(void **state)
{
    (void)state;
    fake.temp_status[1] = RSMI_STATUS_NOT_SUPPORTED;
    fake.temp_status[2] = RSMI_STATUS_NOT_SUPPORTED;
    fake.power_status = RSMI_STATUS_NOT_SUPPORTED;
    fake.vram_status = RSMI_STATUS_PERMISSION;
    fake.name_status = RSMI_STATUS_NOT_SUPPORTED;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    struct gpu *g = open_fakes("auto", 0, NULL, &cap.log, err, sizeof(err));
    assert_non_null(g);
    assert_string_equal(gpu_backend_name(g), "rocm");
    assert_int_equal(capture_read(&cap), 1);
    assert_non_null(strstr(cap.text, "gpu backend: rocm, card 0000:03:00.0 (unnamed), VRAM "
                                     "unreadable; llama.gpu is host GPU 0 in PCI bus order\n"));

    struct gpu_reading r;
    assert_int_equal(gpu_read(g, &r), 0);
    assert_int_equal(fake.last_index, 1);
    assert_true(r.present);
    assert_string_equal(r.name, "");
    assert_false(r.vram_valid);
    assert_int_equal(r.vram_total_bytes, 0);
    assert_float_equal(r.temp_edge_c, 45.0, 1e-9);
    assert_true(isnan(r.temp_junction_c));
    assert_true(isnan(r.temp_mem_c));
    assert_true(isnan(r.power_w));
    assert_float_equal(r.busy_percent, 37.0, 1e-9);
    gpu_close(g);
    assert_int_equal(fnvml.inits, 0); /* rocm was found first */
    capture_close(&cap);
}

static void test_rocm_device_that_stops_answering(void **state)
{
    (void)state;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    struct gpu *g = open_fakes("rocm", 0, NULL, &cap.log, err, sizeof(err));
    assert_non_null(g);
    capture_read(&cap);
    for (int i = 0; i < 3; i++) {
        fake.temp_status[i] = RSMI_STATUS_FILE_ERROR;
    }
    fake.vram_status = fake.power_status = fake.busy_status = RSMI_STATUS_FILE_ERROR;
    struct gpu_reading r;
    assert_int_equal(gpu_read(g, &r), -1);
    assert_int_equal(gpu_read(g, &r), -1);
    assert_true(r.present);
    assert_false(r.vram_valid);
    assert_false(gpu_vram_below_floor(&r, 1ull << 40)); /* unknown VRAM never blocks */
    assert_true(isnan(r.temp_edge_c) && isnan(r.power_w) && isnan(r.busy_percent));
    assert_int_equal(capture_read(&cap), 1); /* logged once, not at every read */
    assert_non_null(strstr(cap.text, "the GPU 0000:03:00.0 answered none of the metrics"));
    fake.busy_status = RSMI_STATUS_SUCCESS;
    assert_int_equal(gpu_read(g, &r), 0);
    assert_int_equal(capture_read(&cap), 1);
    assert_non_null(strstr(cap.text, "the GPU 0000:03:00.0 answers again"));
    gpu_close(g);
    capture_close(&cap);
}

static void test_card_out_of_range(void **state)
{
    (void)state;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    assert_null(open_fakes("rocm", 2, NULL, &cap.log, err, sizeof(err)));
    assert_string_equal(err, "gpu backend rocm: GPU 2 out of range (rocm-smi sees 2 devices)");
    assert_int_equal(fake.inits, fake.shut_downs);

    struct gpu *g = open_fakes("auto", 5, NULL, &cap.log, err, sizeof(err));
    assert_non_null(g);
    assert_string_equal(gpu_backend_name(g), "none");
    assert_int_equal(capture_read(&cap), 1);
    assert_non_null(strstr(cap.text, "gpu backend: none (rocm unavailable: GPU 5 out of range "
                                     "(rocm-smi sees 2 devices); nvml unavailable: GPU 5 out "
                                     "of range (NVML sees 3 devices))\n"));
    assert_int_equal(fake.inits, 2);
    assert_int_equal(fake.shut_downs, 2);
    assert_int_equal(fnvml.inits, fnvml.shutdowns);
    gpu_close(g);
    capture_close(&cap);
}

/* rocm finds no device: "rocm" fails, "auto" moves on to nvml and says why. */
static void test_no_amd_device_auto_takes_nvml(void **state)
{
    (void)state;
    fake.devices = 0;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    assert_null(open_fakes("rocm", 0, NULL, &cap.log, err, sizeof(err)));
    assert_string_equal(err, "gpu backend rocm: rocm-smi found no GPU");
    struct gpu *g = open_fakes("auto", 0, NULL, &cap.log, err, sizeof(err));
    assert_string_equal(gpu_backend_name(g), "nvml");
    assert_int_equal(capture_read(&cap), 1);
    assert_non_null(strstr(cap.text, "gpu backend: nvml, card 0000:01:00.0 (NVIDIA H200 #1), "
                                     "144384 MiB VRAM; llama.gpu is host GPU 0 in PCI bus "
                                     "order (rocm unavailable: rocm-smi found no GPU)\n"));
    gpu_close(g);
    assert_int_equal(fake.inits, fake.shut_downs);
    assert_int_equal(fnvml.inits, 1);
    assert_int_equal(fnvml.shutdowns, 1);
    capture_close(&cap);
}

static void test_no_library_falls_back_to_none(void **state)
{
    (void)state;
    fake.init_status = RSMI_STATUS_INIT_ERROR;
    fnvml.init_status = NVML_ERROR_DRIVER_NOT_LOADED;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    struct gpu *g = open_fakes("auto", 0, NULL, &cap.log, err, sizeof(err));
    assert_non_null(g);
    assert_string_equal(gpu_backend_name(g), "none");
    assert_int_equal(capture_read(&cap), 1);
    assert_non_null(strstr(cap.text, "gpu backend: none (rocm unavailable: rsmi_init failed: fake "
                                     "init error; nvml unavailable: nvmlInit failed: Driver Not "
                                     "Loaded)\n"));

    struct gpu_reading r;
    assert_int_equal(gpu_read(g, &r), 0);
    assert_false(r.present);
    assert_string_equal(r.backend, "none");
    assert_false(r.vram_valid);
    assert_true(isnan(r.temp_edge_c) && isnan(r.temp_junction_c) && isnan(r.temp_mem_c));
    assert_true(isnan(r.power_w) && isnan(r.busy_percent));
    gpu_close(g);

    assert_null(open_fakes("rocm", 0, NULL, &cap.log, err, sizeof(err)));
    assert_string_equal(err, "gpu backend rocm: rsmi_init failed: fake init error");
    assert_null(open_fakes("nvml", 0, NULL, &cap.log, err, sizeof(err)));
    assert_string_equal(err, "gpu backend nvml: nvmlInit failed: Driver Not Loaded");
    assert_int_equal(fake.shut_downs, 0); /* never initialised, so never shut down */
    assert_int_equal(fnvml.shutdowns, 0);
    capture_close(&cap);
}

/* ---- backend choice ---- */

static void test_no_pinned_gpu_means_none(void **state)
{
    (void)state;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    struct gpu *g = open_fakes("auto", -1, NULL, &cap.log, err, sizeof(err));
    assert_string_equal(gpu_backend_name(g), "none");
    assert_int_equal(fake.inits + fnvml.inits, 0);
    gpu_close(g);
    assert_null(open_fakes("rocm", -1, NULL, &cap.log, err, sizeof(err)));
    assert_string_equal(err, "gpu backend rocm needs a GPU index (llama.gpu is -1)");
    assert_null(open_fakes("nvml", -1, NULL, &cap.log, err, sizeof(err)));
    assert_string_equal(err, "gpu backend nvml needs a GPU index (llama.gpu is -1)");

    g = open_fakes("none", 0, NULL, &cap.log, err, sizeof(err));
    assert_string_equal(gpu_backend_name(g), "none");
    assert_int_equal(fake.inits + fnvml.inits, 0);
    gpu_close(g);
    assert_int_equal(capture_read(&cap), 2);
    assert_non_null(strstr(cap.text, "gpu backend: none (llama.gpu is -1: no GPU pinned)"));
    assert_non_null(strstr(cap.text, "gpu backend: none (metrics.gpu_backend is \"none\")"));
    capture_close(&cap);
}

static void test_unknown_backend(void **state)
{
    (void)state;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    assert_null(open_fakes("cuda", 0, NULL, &cap.log, err, sizeof(err)));
    assert_string_equal(err, "unknown gpu backend \"cuda\" (expected auto, rocm, nvml or none)");
    capture_close(&cap);
}

struct scripted_gpu {
    int reads;
    bool closed;
};

static int scripted_read(void *state, struct gpu_reading *out)
{
    struct scripted_gpu *s = state;
    s->reads++;
    out->present = true;
    out->vram_valid = true;
    out->vram_total_bytes = 1000;
    out->vram_used_bytes = 100ull * (unsigned)s->reads;
    return 0;
}

static void scripted_close(void *state)
{
    ((struct scripted_gpu *)state)->closed = true;
}

static void test_custom_backend_feeds_readings(void **state)
{
    (void)state;
    static const struct gpu_ops ops = {
        .name = "test", .read = scripted_read, .close = scripted_close};
    struct scripted_gpu s = {0};
    struct gpu *g = gpu_open_ops(&ops, &s);
    assert_non_null(g);
    assert_string_equal(gpu_backend_name(g), "test");
    struct gpu_reading r;
    assert_int_equal(gpu_read(g, &r), 0);
    assert_int_equal(gpu_read(g, &r), 0);
    assert_string_equal(r.backend, "test");
    assert_int_equal(r.vram_used_bytes, 200);
    assert_true(isnan(r.power_w)); /* what the backend leaves alone stays unknown */
    gpu_close(g);
    assert_true(s.closed);
}

/* The admission floor, on readings fed through the seam: the scripted
 * device uses 100, 200, ... of its 1000 bytes on successive reads. */
static void test_vram_floor_through_the_seam(void **state)
{
    (void)state;
    static const struct gpu_ops ops = {
        .name = "test", .read = scripted_read, .close = scripted_close};
    struct scripted_gpu s = {0};
    struct gpu *g = gpu_open_ops(&ops, &s);
    struct gpu_reading r;
    bool below[9];
    for (int i = 0; i < 9; i++) {
        gpu_read(g, &r);
        below[i] = gpu_vram_below_floor(&r, 350); /* free: 900, 800, ..., 100 */
    }
    for (int i = 0; i < 9; i++)
        assert_int_equal(below[i], 1000 - 100 * (i + 1) < 350);
    assert_false(gpu_vram_below_floor(&r, 0)); /* no floor */
    r.vram_valid = false;
    assert_false(gpu_vram_below_floor(&r, 350)); /* unknown VRAM never blocks */
    r.vram_valid = true;
    r.present = false;
    assert_false(gpu_vram_below_floor(&r, 350));
    r.present = true;
    r.vram_used_bytes = 2000; /* a driver reporting more used than total */
    assert_true(gpu_vram_below_floor(&r, 1));
    gpu_close(g);

    struct gpu_reading none;
    gpu_reading_clear(&none, "none");
    assert_false(gpu_vram_below_floor(&none, 1u << 30));
}

/* ---- the real libraries on this machine ---- */

static void test_real_libraries_without_gpu(void **state)
{
    (void)state;
    struct rsmi_api real;
    void *library = NULL;
    char why[256] = "";
    /* rocm-smi-lib is a build dependency: it must load here */
    if (gpu_rsmi_load(&real, &library, why, sizeof(why)) != 0)
        fail_msg("%s", why);
    uint32_t devices = 0;
    bool has_gpu = false;
    if (real.init(0) == RSMI_STATUS_SUCCESS) {
        has_gpu = real.num_monitor_devices(&devices) == RSMI_STATUS_SUCCESS && devices > 0;
        real.shut_down();
    }
    dlclose(library);
    if (has_gpu) {
        skip(); /* an AMD GPU is here: the fallback cannot be shown */
    }
    void *nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (nvml) {
        dlclose(nvml);
        skip(); /* NVIDIA's driver is here (tests/gpu/device-check.sh reads it) */
    }
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    struct gpu *g = gpu_open("auto", 0, &cap.log, err, sizeof(err));
    assert_non_null(g);
    assert_string_equal(gpu_backend_name(g), "none");
    assert_int_equal(capture_read(&cap), 1);
    assert_non_null(strstr(cap.text, "gpu backend: none (rocm unavailable: "));
    assert_non_null(strstr(cap.text, "; nvml unavailable: cannot load libnvidia-ml.so.1 ("));
    struct gpu_reading r;
    assert_int_equal(gpu_read(g, &r), 0);
    assert_false(r.present);
    gpu_close(g);

    assert_null(gpu_open("rocm", 0, &cap.log, err, sizeof(err)));
    assert_true(strncmp(err, "gpu backend rocm: ", 18) == 0);
    assert_null(gpu_open("nvml", 0, &cap.log, err, sizeof(err)));
    assert_true(strncmp(err, "gpu backend nvml: cannot load libnvidia-ml.so.1", 47) == 0);
    capture_close(&cap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_rocm_reads_and_converts_units, reset_fakes),
        cmocka_unit_test_setup(test_rocm_missing_sensors_are_nan, reset_fakes),
        cmocka_unit_test_setup(test_rocm_device_that_stops_answering, reset_fakes),
        cmocka_unit_test_setup(test_card_out_of_range, reset_fakes),
        cmocka_unit_test_setup(test_no_amd_device_auto_takes_nvml, reset_fakes),
        cmocka_unit_test_setup(test_no_library_falls_back_to_none, reset_fakes),
        cmocka_unit_test_setup(test_no_pinned_gpu_means_none, reset_fakes),
        cmocka_unit_test_setup(test_unknown_backend, reset_fakes),
        cmocka_unit_test(test_custom_backend_feeds_readings),
        cmocka_unit_test(test_vram_floor_through_the_seam),
        cmocka_unit_test(test_real_libraries_without_gpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
