/* test_gpu_pin.c — pinning: llama.gpu = N against the GPU lists the worker
 * inherited (none; ROCR_VISIBLE_DEVICES from Slurm; HIP_VISIBLE_DEVICES
 * indexing into ROCR's; CUDA_VISIBLE_DEVICES read by CUDA and by HIP; ids
 * instead of indexes; a list too short or malformed), the variables a
 * pinned llama-server gets, and the metrics reading that same card, found
 * by PCI bus id or unique id through the fake rocm-smi-lib and fake NVML. */
#include "test_gpu_fakes.h"

static void resolve_ok(int gpu, const struct gpu_visible *vis, struct gpu_target *t)
{
    char err[256] = "";
    assert_int_equal(gpu_target_resolve(gpu, vis, t, err, sizeof(err)), 0);
    assert_string_equal(err, "");
}

static void test_host_numbering_without_lists(void **state)
{
    (void)state;
    const struct gpu_visible vis = {NULL, NULL, NULL};
    struct gpu_target t;
    resolve_ok(1, &vis, &t);
    assert_string_equal(t.rocm, "1");
    assert_string_equal(t.cuda, "1");
    assert_string_equal(t.rocm_why, "host GPU 1 in PCI bus order");
    char env[GPU_CHILD_ENV][GPU_CHILD_ENV_LEN];
    gpu_target_child_env(&t, env);
    assert_string_equal(env[0], "ROCR_VISIBLE_DEVICES=1");
    assert_string_equal(env[1], "HIP_VISIBLE_DEVICES=0"); /* HIP counts what ROCR left */
    assert_string_equal(env[2], "CUDA_VISIBLE_DEVICES=1");
    assert_string_equal(env[3], "CUDA_DEVICE_ORDER=PCI_BUS_ID");

    resolve_ok(-1, &vis, &t);
    assert_int_equal(t.gpu, -1);
    assert_string_equal(t.rocm, "");
}

static void test_inherited_rocr_and_hip(void **state)
{
    (void)state;
    struct gpu_target t;
    const struct gpu_visible slurm = {"2,3", NULL, NULL};
    resolve_ok(1, &slurm, &t);
    assert_string_equal(t.rocm, "3");
    assert_string_equal(t.rocm_why, "entry 1 of inherited ROCR_VISIBLE_DEVICES=2,3");
    assert_string_equal(t.cuda, "1"); /* CUDA never reads ROCR's list */

    const struct gpu_visible both = {"1,0", "1", NULL};
    resolve_ok(0, &both, &t);
    assert_string_equal(t.rocm, "0");
    assert_string_equal(t.rocm_why, "entry 0 of inherited HIP_VISIBLE_DEVICES=1, then entry 1 of "
                                    "inherited ROCR_VISIBLE_DEVICES=1,0");

    const struct gpu_visible hip_only = {NULL, "3,2", "0,1"}; /* HIP's list wins over CUDA's */
    resolve_ok(1, &hip_only, &t);
    assert_string_equal(t.rocm, "2");
}

static void test_inherited_cuda(void **state)
{
    (void)state;
    struct gpu_target t;
    const struct gpu_visible k8s = {NULL, NULL, "7,5"};
    resolve_ok(1, &k8s, &t);
    assert_string_equal(t.cuda, "5");
    assert_string_equal(t.cuda_why, "entry 1 of inherited CUDA_VISIBLE_DEVICES=7,5");
    assert_string_equal(t.rocm, "5"); /* HIP reads CUDA_VISIBLE_DEVICES too */
    char env[GPU_CHILD_ENV][GPU_CHILD_ENV_LEN];
    gpu_target_child_env(&t, env);
    assert_string_equal(env[0], "ROCR_VISIBLE_DEVICES=5");
    assert_string_equal(env[2], "CUDA_VISIBLE_DEVICES=5");

    const struct gpu_visible ids = {NULL, NULL, "GPU-aaaa-1,MIG-bbbb/1/0"};
    resolve_ok(1, &ids, &t);
    assert_string_equal(t.cuda, "MIG-bbbb/1/0");
    assert_string_equal(t.rocm, "MIG-bbbb/1/0");
}

static void test_lists_that_do_not_fit(void **state)
{
    (void)state;
    struct gpu_target t;
    char err[256];
    const struct gpu_visible one = {NULL, NULL, "7"};
    assert_int_equal(gpu_target_resolve(1, &one, &t, err, sizeof(err)), -1);
    assert_string_equal(err, "llama.gpu = 1, but the worker inherited CUDA_VISIBLE_DEVICES=7, "
                             "which lists 1 GPU (llama.gpu counts from 0 within that list)");
    const struct gpu_visible empty = {"", NULL, NULL};
    assert_int_equal(gpu_target_resolve(0, &empty, &t, err, sizeof(err)), -1);
    assert_string_equal(err, "llama.gpu = 0, but the worker inherited ROCR_VISIBLE_DEVICES=, "
                             "which lists 0 GPUs (llama.gpu counts from 0 within that list)");
    const struct gpu_visible bad = {NULL, NULL, "0,all"};
    assert_int_equal(gpu_target_resolve(0, &bad, &t, err, sizeof(err)), -1);
    assert_string_equal(err, "inherited CUDA_VISIBLE_DEVICES=0,all: entry 1 is neither a GPU "
                             "index nor a GPU-/MIG- id");
    const struct gpu_visible hole = {"0,,1", NULL, NULL};
    assert_int_equal(gpu_target_resolve(0, &hole, &t, err, sizeof(err)), -1);
    /* HIP's entry 2 indexes past ROCR's two cards */
    const struct gpu_visible past = {"4,5", "2", NULL};
    assert_int_equal(gpu_target_resolve(0, &past, &t, err, sizeof(err)), -1);
    assert_string_equal(err, "llama.gpu = 2, but the worker inherited ROCR_VISIBLE_DEVICES=4,5, "
                             "which lists 2 GPUs (llama.gpu counts from 0 within that list)");

    struct captured_log cap;
    capture_open(&cap);
    assert_null(open_fakes("auto", 1, &one, &cap.log, err, sizeof(err)));
    assert_int_equal(fake.inits + fnvml.inits, 0); /* refused before any library is asked */
    capture_close(&cap);
}

static void test_child_env_replaces(void **state)
{
    (void)state;
    assert_true(gpu_child_env_replaces("CUDA_VISIBLE_DEVICES=3"));
    assert_true(gpu_child_env_replaces("CUDA_DEVICE_ORDER=FASTEST_FIRST"));
    assert_true(gpu_child_env_replaces("ROCR_VISIBLE_DEVICES="));
    assert_false(gpu_child_env_replaces("CUDA_VISIBLE_DEVICES_X=3"));
    assert_false(gpu_child_env_replaces("GPU_DEVICE_ORDINAL=0"));
    assert_false(gpu_child_env_replaces("PATH=/bin"));
}

/* Case 1 of issue 16 point 7 on AMD: Slurm gave the worker ROCR 1,0 and
 * llama.gpu = 0, so llama-server runs on host GPU 1 (PCI order): the card
 * on bus c1, which rocm-smi calls device 0. The metrics read that card. */
static void test_rocm_metrics_follow_the_pinned_card(void **state)
{
    (void)state;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    const struct gpu_visible slurm = {"1,0", NULL, NULL};
    struct gpu *g = open_fakes("auto", 0, &slurm, &cap.log, err, sizeof(err));
    assert_non_null(g);
    assert_string_equal(gpu_backend_name(g), "rocm");
    assert_int_equal(capture_read(&cap), 1);
    assert_non_null(strstr(cap.text,
                           "card 0000:c1:00.0 (AMD Instinct MI210), 65536 MiB VRAM; "
                           "llama.gpu is entry 0 of inherited ROCR_VISIBLE_DEVICES=1,0\n"));
    struct gpu_reading r;
    gpu_read(g, &r);
    assert_int_equal(fake.last_index, 0);
    gpu_close(g);

    const struct gpu_visible by_id = {"GPU-5555666677778888", NULL, NULL};
    g = open_fakes("rocm", 0, &by_id, &cap.log, err, sizeof(err));
    assert_non_null(g);
    gpu_read(g, &r);
    assert_int_equal(fake.last_index, 1);
    assert_string_equal(r.pci_bus_id, "0000:03:00.0");
    gpu_close(g);

    const struct gpu_visible gone = {"GPU-00000000000000ff", NULL, NULL};
    assert_null(open_fakes("rocm", 0, &gone, &cap.log, err, sizeof(err)));
    assert_string_equal(err, "gpu backend rocm: no device with unique id GPU-00000000000000ff "
                             "(rocm-smi sees 2)");
    assert_int_equal(fake.inits, fake.shut_downs);
    capture_close(&cap);
}

/* The same on NVIDIA: a device plugin gave CUDA 2,0 and llama.gpu = 0, so
 * llama-server (CUDA_DEVICE_ORDER=PCI_BUS_ID) runs on host GPU 2: bus 81,
 * NVML's device 2. */
static void test_nvml_metrics_follow_the_pinned_card(void **state)
{
    (void)state;
    fake.init_status = RSMI_STATUS_INIT_ERROR; /* no AMD driver on this host */
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    const struct gpu_visible plugin = {NULL, NULL, "2,0"};
    struct gpu *g = open_fakes("auto", 0, &plugin, &cap.log, err, sizeof(err));
    assert_non_null(g);
    assert_string_equal(gpu_backend_name(g), "nvml");
    assert_int_equal(capture_read(&cap), 1);
    assert_non_null(strstr(cap.text, "card 0000:81:00.0 (NVIDIA H200 #2), 144384 MiB VRAM; "
                                     "llama.gpu is entry 0 of inherited CUDA_VISIBLE_DEVICES=2,0 "
                                     "(rocm unavailable: rsmi_init failed: fake init error)\n"));
    struct gpu_reading r;
    gpu_read(g, &r);
    assert_int_equal(fnvml.last_device, 2);
    gpu_close(g);

    g = open_fakes("nvml", 1, &plugin, &cap.log, err, sizeof(err)); /* host GPU 0: bus 01 */
    gpu_read(g, &r);
    assert_int_equal(fnvml.last_device, 1);
    assert_string_equal(r.pci_bus_id, "0000:01:00.0");
    gpu_close(g);
    capture_close(&cap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_numbering_without_lists),
        cmocka_unit_test(test_inherited_rocr_and_hip),
        cmocka_unit_test(test_inherited_cuda),
        cmocka_unit_test_setup(test_lists_that_do_not_fit, reset_fakes),
        cmocka_unit_test(test_child_env_replaces),
        cmocka_unit_test_setup(test_rocm_metrics_follow_the_pinned_card, reset_fakes),
        cmocka_unit_test_setup(test_nvml_metrics_follow_the_pinned_card, reset_fakes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
