/* gpu.c — backend choice for gpu.h ("auto" / "rocm" / "none"), the none
 * backend, and the calls that dispatch to whichever backend is open. */
#include "gpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gpu {
    const struct gpu_ops *ops;
    void *state;
};

void gpu_reading_clear(struct gpu_reading *r, const char *backend)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->backend, sizeof(r->backend), "%s", backend);
    r->temp_edge_c = NAN;
    r->temp_junction_c = NAN;
    r->temp_mem_c = NAN;
    r->power_w = NAN;
    r->busy_percent = NAN;
}

static int none_read(void *state, struct gpu_reading *out)
{
    (void)state;
    (void)out;
    return 0;
}

static void none_close(void *state)
{
    (void)state;
}

static const struct gpu_ops none_ops = {
    .name = "none",
    .read = none_read,
    .close = none_close,
};

struct gpu *gpu_open_ops(const struct gpu_ops *ops, void *state)
{
    struct gpu *g = malloc(sizeof(*g));
    if (g) {
        g->ops = ops;
        g->state = state;
    }
    return g;
}

static struct gpu *open_none(const struct logger *log, const char *why, char *err, size_t err_len)
{
    struct gpu *g = gpu_open_ops(&none_ops, NULL);
    if (!g) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    log_info(log, "gpu", "gpu backend: none (%s)", why);
    return g;
}

static struct gpu *open_rocm(bool fall_back, unsigned index, const struct rsmi_api *rsmi,
                             const struct logger *log, char *err, size_t err_len)
{
    char why[256];
    void *state = NULL;
    int rc = gpu_rocm_open(rsmi, index, &state, why, sizeof(why));
    if (rc == GPU_ROCM_NO_MEMORY || (rc != 0 && !fall_back)) {
        snprintf(err, err_len, "gpu backend rocm: %s", why);
        return NULL;
    }
    if (rc != 0) {
        char because[300];
        snprintf(because, sizeof(because), "rocm unavailable: %s", why);
        return open_none(log, because, err, err_len);
    }
    struct gpu *g = gpu_open_ops(&gpu_rocm_ops, state);
    if (!g) {
        gpu_rocm_ops.close(state);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    struct gpu_reading r;
    gpu_read(g, &r);
    if (r.vram_valid) {
        log_info(log, "gpu", "gpu backend: rocm, device %u (%s), %llu MiB VRAM", index,
                 r.name[0] ? r.name : "unnamed", (unsigned long long)(r.vram_total_bytes >> 20));
    } else {
        log_info(log, "gpu", "gpu backend: rocm, device %u (%s), VRAM unreadable", index,
                 r.name[0] ? r.name : "unnamed");
    }
    return g;
}

struct gpu *gpu_open_rsmi(const char *backend, int index, const struct rsmi_api *rsmi,
                          const struct logger *log, char *err, size_t err_len)
{
    bool is_auto = strcmp(backend, "auto") == 0;
    if (strcmp(backend, "none") == 0) {
        return open_none(log, "metrics.gpu_backend is \"none\"", err, err_len);
    }
    if (!is_auto && strcmp(backend, "rocm") != 0) {
        snprintf(err, err_len, "unknown gpu backend \"%s\" (expected auto, rocm or none)", backend);
        return NULL;
    }
    if (index < 0) {
        if (is_auto) {
            return open_none(log, "llama.gpu is -1: no GPU pinned", err, err_len);
        }
        snprintf(err, err_len, "gpu backend rocm needs a GPU index (llama.gpu is -1)");
        return NULL;
    }
    return open_rocm(is_auto, (unsigned)index, rsmi, log, err, err_len);
}

struct gpu *gpu_open(const char *backend, int index, const struct logger *log, char *err,
                     size_t err_len)
{
    return gpu_open_rsmi(backend, index, gpu_rsmi_system(), log, err, err_len);
}

int gpu_read(struct gpu *g, struct gpu_reading *out)
{
    gpu_reading_clear(out, g->ops->name);
    return g->ops->read(g->state, out);
}

const char *gpu_backend_name(const struct gpu *g)
{
    return g->ops->name;
}

void gpu_close(struct gpu *g)
{
    if (!g) {
        return;
    }
    g->ops->close(g->state);
    free(g);
}

bool gpu_vram_below_floor(const struct gpu_reading *r, uint64_t floor_bytes)
{
    if (floor_bytes == 0 || !r->present || !r->vram_valid)
        return false;
    uint64_t used =
        r->vram_used_bytes < r->vram_total_bytes ? r->vram_used_bytes : r->vram_total_bytes;
    return r->vram_total_bytes - used < floor_bytes;
}
