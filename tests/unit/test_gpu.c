/* test_gpu.c — the gpu module: the rocm backend's unit conversions, missing
 * sensors, init failure, no device and index out of range, all through a
 * fake rocm-smi-lib; backend choice ("auto" falls back to none with one log
 * line saying why, "rocm" fails loudly, index -1 means none); a test backend
 * through gpu_open_ops; and the real library on this machine. */
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gpu.h"

/* ---- a fake rocm-smi-lib: one file-level script, reset before each test ---- */

struct fake_rsmi {
    rsmi_status_t init_status;
    uint32_t devices;
    int inits, shut_downs;
    uint64_t vram_total, vram_used;
    rsmi_status_t vram_status, power_status, busy_status, name_status;
    int64_t temp_mc[3]; /* edge, junction, memory in millidegrees */
    rsmi_status_t temp_status[3];
    uint64_t power_uw;
    uint32_t busy;
    uint32_t last_index; /* device index of the latest per-device call */
};

static struct fake_rsmi fake;

static rsmi_status_t fake_init(uint64_t flags)
{
    assert_int_equal(flags, 0);
    if (fake.init_status == RSMI_STATUS_SUCCESS) {
        fake.inits++;
    }
    return fake.init_status;
}

static rsmi_status_t fake_shut_down(void)
{
    fake.shut_downs++;
    return RSMI_STATUS_SUCCESS;
}

static rsmi_status_t fake_num_devices(uint32_t *n)
{
    *n = fake.devices;
    return RSMI_STATUS_SUCCESS;
}

static rsmi_status_t fake_name(uint32_t dv, char *name, size_t len)
{
    fake.last_index = dv;
    if (fake.name_status == RSMI_STATUS_SUCCESS) {
        snprintf(name, len, "AMD Instinct MI210");
    }
    return fake.name_status;
}

static rsmi_status_t fake_mem_total(uint32_t dv, rsmi_memory_type_t type, uint64_t *total)
{
    fake.last_index = dv;
    assert_int_equal(type, RSMI_MEM_TYPE_VRAM);
    *total = fake.vram_total;
    return fake.vram_status;
}

static rsmi_status_t fake_mem_used(uint32_t dv, rsmi_memory_type_t type, uint64_t *used)
{
    fake.last_index = dv;
    assert_int_equal(type, RSMI_MEM_TYPE_VRAM);
    *used = fake.vram_used;
    return fake.vram_status;
}

static rsmi_status_t fake_temp(uint32_t dv, uint32_t sensor, rsmi_temperature_metric_t metric,
                               int64_t *temp)
{
    fake.last_index = dv;
    assert_int_equal(metric, RSMI_TEMP_CURRENT);
    assert_true(sensor <= RSMI_TEMP_TYPE_MEMORY);
    static const int slot[] = {
        [RSMI_TEMP_TYPE_EDGE] = 0, [RSMI_TEMP_TYPE_JUNCTION] = 1, [RSMI_TEMP_TYPE_MEMORY] = 2};
    *temp = fake.temp_mc[slot[sensor]];
    return fake.temp_status[slot[sensor]];
}

static rsmi_status_t fake_power(uint32_t dv, uint32_t sensor, uint64_t *power)
{
    fake.last_index = dv;
    assert_int_equal(sensor, 0);
    *power = fake.power_uw;
    return fake.power_status;
}

static rsmi_status_t fake_busy(uint32_t dv, uint32_t *busy)
{
    fake.last_index = dv;
    *busy = fake.busy;
    return fake.busy_status;
}

static rsmi_status_t fake_status_string(rsmi_status_t status, const char **text)
{
    *text = status == RSMI_STATUS_INIT_ERROR ? "fake init error" : "fake error";
    return RSMI_STATUS_SUCCESS;
}

static const struct rsmi_api fake_api = {
    .init = fake_init,
    .shut_down = fake_shut_down,
    .num_monitor_devices = fake_num_devices,
    .dev_name_get = fake_name,
    .dev_memory_total_get = fake_mem_total,
    .dev_memory_usage_get = fake_mem_used,
    .dev_temp_metric_get = fake_temp,
    .dev_power_ave_get = fake_power,
    .dev_busy_percent_get = fake_busy,
    .status_string = fake_status_string,
};

/* A healthy two-GPU machine. */
static int reset_fake(void **state)
{
    (void)state;
    memset(&fake, 0, sizeof(fake));
    fake.devices = 2;
    fake.vram_total = 64ull << 30;
    fake.vram_used = 3ull << 30;
    fake.temp_mc[0] = 45000;
    fake.temp_mc[1] = 51250;
    fake.temp_mc[2] = 60000;
    fake.power_uw = 123456789;
    fake.busy = 37;
    return 0;
}

/* ---- a logger whose lines land in a pipe ---- */

struct captured_log {
    struct logger log;
    int fds[2];
    char text[4096];
};

static void capture_open(struct captured_log *c)
{
    assert_int_equal(pipe2(c->fds, O_NONBLOCK | O_CLOEXEC), 0);
    logger_init(&c->log, LOG_DEBUG, false, c->fds[1]);
}

/* Everything logged so far, and how many lines it was. */
static int capture_read(struct captured_log *c)
{
    ssize_t n = read(c->fds[0], c->text, sizeof(c->text) - 1);
    c->text[n > 0 ? n : 0] = '\0';
    int lines = 0;
    for (const char *p = c->text; *p; p++) {
        lines += *p == '\n';
    }
    return lines;
}

static void capture_close(struct captured_log *c)
{
    close(c->fds[0]);
    close(c->fds[1]);
}

/* ---- the rocm backend ---- */

static void test_rocm_reads_and_converts_units(void **state)
{
    (void)state;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    struct gpu *g = gpu_open_rsmi("rocm", 1, &fake_api, &cap.log, err, sizeof(err));
    assert_non_null(g);
    assert_string_equal(gpu_backend_name(g), "rocm");
    assert_int_equal(capture_read(&cap), 1);
    assert_non_null(
        strstr(cap.text, "gpu backend: rocm, device 1 (AMD Instinct MI210), 65536 MiB"));

    struct gpu_reading r;
    assert_int_equal(gpu_read(g, &r), 0);
    assert_int_equal(fake.last_index, 1);
    assert_true(r.present);
    assert_string_equal(r.backend, "rocm");
    assert_string_equal(r.name, "AMD Instinct MI210");
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
    struct gpu *g = gpu_open_rsmi("auto", 0, &fake_api, &cap.log, err, sizeof(err));
    assert_non_null(g);
    assert_string_equal(gpu_backend_name(g), "rocm");
    assert_int_equal(capture_read(&cap), 1);
    assert_non_null(strstr(cap.text, "gpu backend: rocm, device 0 (unnamed), VRAM unreadable"));

    struct gpu_reading r;
    assert_int_equal(gpu_read(g, &r), 0);
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
    capture_close(&cap);
}

static void test_rocm_device_answering_nothing_reads_minus_one(void **state)
{
    (void)state;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    struct gpu *g = gpu_open_rsmi("rocm", 0, &fake_api, &cap.log, err, sizeof(err));
    assert_non_null(g);
    for (int i = 0; i < 3; i++) {
        fake.temp_status[i] = RSMI_STATUS_FILE_ERROR;
    }
    fake.vram_status = fake.power_status = fake.busy_status = RSMI_STATUS_FILE_ERROR;
    struct gpu_reading r;
    assert_int_equal(gpu_read(g, &r), -1);
    assert_true(r.present);
    assert_false(r.vram_valid);
    assert_true(isnan(r.temp_edge_c) && isnan(r.power_w) && isnan(r.busy_percent));
    gpu_close(g);
    capture_close(&cap);
}

static void test_rocm_index_out_of_range(void **state)
{
    (void)state;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    assert_null(gpu_open_rsmi("rocm", 2, &fake_api, &cap.log, err, sizeof(err)));
    assert_string_equal(err,
                        "gpu backend rocm: GPU index 2 out of range (rocm-smi sees 2 devices)");
    assert_int_equal(fake.inits, fake.shut_downs);

    struct gpu *g = gpu_open_rsmi("auto", 5, &fake_api, &cap.log, err, sizeof(err));
    assert_non_null(g);
    assert_string_equal(gpu_backend_name(g), "none");
    assert_int_equal(capture_read(&cap), 1);
    assert_non_null(strstr(cap.text, "gpu backend: none (rocm unavailable: GPU index 5 out of "
                                     "range (rocm-smi sees 2 devices))"));
    assert_int_equal(fake.inits, 2);
    assert_int_equal(fake.shut_downs, 2);
    gpu_close(g);
    capture_close(&cap);
}

static void test_rocm_no_device(void **state)
{
    (void)state;
    fake.devices = 0;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    assert_null(gpu_open_rsmi("rocm", 0, &fake_api, &cap.log, err, sizeof(err)));
    assert_string_equal(err, "gpu backend rocm: rocm-smi found no GPU");
    struct gpu *g = gpu_open_rsmi("auto", 0, &fake_api, &cap.log, err, sizeof(err));
    assert_string_equal(gpu_backend_name(g), "none");
    assert_int_equal(capture_read(&cap), 1);
    assert_non_null(
        strstr(cap.text, "gpu backend: none (rocm unavailable: rocm-smi found no GPU)"));
    gpu_close(g);
    assert_int_equal(fake.inits, fake.shut_downs);
    capture_close(&cap);
}

static void test_init_failure_falls_back_to_none(void **state)
{
    (void)state;
    fake.init_status = RSMI_STATUS_INIT_ERROR;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    struct gpu *g = gpu_open_rsmi("auto", 0, &fake_api, &cap.log, err, sizeof(err));
    assert_non_null(g);
    assert_string_equal(gpu_backend_name(g), "none");
    assert_int_equal(capture_read(&cap), 1);
    assert_non_null(strstr(
        cap.text, "gpu backend: none (rocm unavailable: rsmi_init failed: fake init error)"));

    struct gpu_reading r;
    assert_int_equal(gpu_read(g, &r), 0);
    assert_false(r.present);
    assert_string_equal(r.backend, "none");
    assert_false(r.vram_valid);
    assert_true(isnan(r.temp_edge_c) && isnan(r.temp_junction_c) && isnan(r.temp_mem_c));
    assert_true(isnan(r.power_w) && isnan(r.busy_percent));
    gpu_close(g);

    assert_null(gpu_open_rsmi("rocm", 0, &fake_api, &cap.log, err, sizeof(err)));
    assert_string_equal(err, "gpu backend rocm: rsmi_init failed: fake init error");
    assert_int_equal(fake.shut_downs, 0); /* never initialised, so never shut down */
    capture_close(&cap);
}

/* ---- backend choice ---- */

static void test_no_pinned_gpu_means_none(void **state)
{
    (void)state;
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    struct gpu *g = gpu_open_rsmi("auto", -1, &fake_api, &cap.log, err, sizeof(err));
    assert_string_equal(gpu_backend_name(g), "none");
    assert_int_equal(fake.inits, 0);
    gpu_close(g);
    assert_null(gpu_open_rsmi("rocm", -1, &fake_api, &cap.log, err, sizeof(err)));
    assert_string_equal(err, "gpu backend rocm needs a GPU index (llama.gpu is -1)");

    g = gpu_open_rsmi("none", 0, &fake_api, &cap.log, err, sizeof(err));
    assert_string_equal(gpu_backend_name(g), "none");
    assert_int_equal(fake.inits, 0);
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
    assert_null(gpu_open_rsmi("cuda", 0, &fake_api, &cap.log, err, sizeof(err)));
    assert_string_equal(err, "unknown gpu backend \"cuda\" (expected auto, rocm or none)");
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
    out->vram_used_bytes = 100u * (unsigned)s->reads;
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

/* ---- the real rocm-smi-lib on this machine ---- */

static void test_real_library_without_amd_gpu(void **state)
{
    (void)state;
    const struct rsmi_api *real = gpu_rsmi_system();
    uint32_t devices = 0;
    if (real->init(0) == RSMI_STATUS_SUCCESS) {
        bool has_gpu = real->num_monitor_devices(&devices) == RSMI_STATUS_SUCCESS && devices > 0;
        real->shut_down();
        if (has_gpu) {
            skip(); /* an AMD GPU is here: the fallback cannot be shown */
        }
    }
    struct captured_log cap;
    capture_open(&cap);
    char err[256] = "";
    struct gpu *g = gpu_open("auto", 0, &cap.log, err, sizeof(err));
    assert_non_null(g);
    assert_string_equal(gpu_backend_name(g), "none");
    assert_int_equal(capture_read(&cap), 1);
    assert_non_null(strstr(cap.text, "gpu backend: none (rocm unavailable: "));
    struct gpu_reading r;
    assert_int_equal(gpu_read(g, &r), 0);
    assert_false(r.present);
    gpu_close(g);

    assert_null(gpu_open("rocm", 0, &cap.log, err, sizeof(err)));
    assert_true(strncmp(err, "gpu backend rocm: ", 18) == 0);
    capture_close(&cap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_rocm_reads_and_converts_units, reset_fake),
        cmocka_unit_test_setup(test_rocm_missing_sensors_are_nan, reset_fake),
        cmocka_unit_test_setup(test_rocm_device_answering_nothing_reads_minus_one, reset_fake),
        cmocka_unit_test_setup(test_rocm_index_out_of_range, reset_fake),
        cmocka_unit_test_setup(test_rocm_no_device, reset_fake),
        cmocka_unit_test_setup(test_init_failure_falls_back_to_none, reset_fake),
        cmocka_unit_test_setup(test_no_pinned_gpu_means_none, reset_fake),
        cmocka_unit_test_setup(test_unknown_backend, reset_fake),
        cmocka_unit_test(test_custom_backend_feeds_readings),
        cmocka_unit_test(test_vram_floor_through_the_seam),
        cmocka_unit_test(test_real_library_without_amd_gpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
