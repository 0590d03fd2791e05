/* test_heartbeat.c — the heartbeat encoder writes exactly the bytes of the
 * heartbeat vectors in schemas/vectors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gpu.h"
#include "heartbeat.h"

static void *read_vector(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/schemas/vectors/%s", LLMQ_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[4096];
    *len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    return buf;
}

static void assert_encodes_to(const struct heartbeat *hb, const char *vector)
{
    size_t want_len;
    const void *want = read_vector(vector, &want_len);
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    assert_int_equal(heartbeat_encode(&out, hb), 0);
    assert_int_equal(out.size, want_len);
    assert_memory_equal(out.data, want, want_len);
    msgpack_sbuffer_destroy(&out);
}

static void rocm_heartbeat_matches_vector(void **state)
{
    (void)state;
    struct gpu_reading g;
    gpu_reading_clear(&g, "rocm");
    g.present = true;
    snprintf(g.name, sizeof(g.name), "AMD Instinct MI210");
    g.vram_valid = true;
    g.vram_total_bytes = 68702699520ull;
    g.vram_used_bytes = 9663676416ull;
    g.temp_edge_c = 41.0;
    g.temp_junction_c = 48.0;
    g.temp_mem_c = 52.0;
    g.power_w = 88.5;
    g.busy_percent = 37.0;
    struct heartbeat hb = {
        "gpu-node-1/0", "gpu-node-1", "tiny", "ready", 1700000000000, &g, 3, 4, 1200, 7, 358000};
    assert_encodes_to(&hb, "heartbeat_rocm.msgpack");
}

static void none_heartbeat_has_nil_readings(void **state)
{
    (void)state;
    struct gpu_reading g;
    gpu_reading_clear(&g, "none");
    struct heartbeat hb = {
        "gpu-node-1/0", "gpu-node-1", "tiny", "starting", 1700000000000, &g, 0, 4, 0, 0, 0};
    assert_encodes_to(&hb, "heartbeat_none.msgpack");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rocm_heartbeat_matches_vector),
        cmocka_unit_test(none_heartbeat_has_nil_readings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
