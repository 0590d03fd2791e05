/* gpu.c — backend choice for gpu.h ("auto" / "rocm" / "nvml" / "none"), the
 * none backend, and the calls that dispatch to whichever backend is open. */
#include "gpu_backend.h"
#include "gpu_nvml.h"
#include "gpu_rocm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gpu {
    const struct gpu_ops *ops;
    void *state;
    const struct logger *log; /* NULL for gpu_open_ops */
    bool silent;              /* the device answered nothing at the last read */
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
    struct gpu *g = calloc(1, sizeof(*g));
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

/* One vendor backend: its ops, how it opens, and which card of the target
 * it reads. */
struct backend {
    const struct gpu_ops *ops;
    int (*open)(const struct gpu_libs *libs, const char *card, void **state, char *err,
                size_t err_len);
    bool cuda; /* reads target->cuda, else target->rocm */
};

static int open_rocm(const struct gpu_libs *libs, const char *card, void **state, char *err,
                     size_t err_len)
{
    return gpu_rocm_open(libs->rsmi, card, state, err, err_len);
}

static int open_nvml(const struct gpu_libs *libs, const char *card, void **state, char *err,
                     size_t err_len)
{
    return gpu_nvml_open(libs->nvml, card, state, err, err_len);
}

static const struct backend backends[] = {
    {&gpu_rocm_ops, open_rocm, false},
    {&gpu_nvml_ops, open_nvml, true},
};
enum { BACKEND_COUNT = sizeof(backends) / sizeof(backends[0]) };

/* The open line: backend, card, how llama.gpu named it, and (auto) why the
 * backends before it were not used. */
static void log_opened(struct gpu *g, const char *why, const char *skipped)
{
    struct gpu_reading r;
    gpu_read(g, &r);
    char vram[48] = "VRAM unreadable";
    if (r.vram_valid)
        snprintf(vram, sizeof(vram), "%llu MiB VRAM",
                 (unsigned long long)(r.vram_total_bytes >> 20));
    log_info(g->log, "gpu", "gpu backend: %s, card %s (%s), %s; llama.gpu is %s%s%s%s",
             g->ops->name, r.pci_bus_id[0] ? r.pci_bus_id : "at an unknown address",
             r.name[0] ? r.name : "unnamed", vram, why, skipped[0] ? " (" : "", skipped,
             skipped[0] ? ")" : "");
}

/* Open backend `b` on its card of `t`. 0 and *out, or a gpu_open_rc with
 * the reason in why. */
static int try_backend(const struct backend *b, const struct gpu_target *t,
                       const struct gpu_libs *libs, const struct logger *log, const char *skipped,
                       struct gpu **out, char *why, size_t why_len)
{
    void *state = NULL;
    int rc = b->open(libs, b->cuda ? t->cuda : t->rocm, &state, why, why_len);
    if (rc != GPU_OPEN_OK)
        return rc;
    struct gpu *g = gpu_open_ops(b->ops, state);
    if (!g) {
        b->ops->close(state);
        snprintf(why, why_len, "out of memory");
        return GPU_OPEN_NO_MEMORY;
    }
    g->log = log;
    log_opened(g, b->cuda ? t->cuda_why : t->rocm_why, skipped);
    *out = g;
    return GPU_OPEN_OK;
}

/* "auto": each backend in turn, then none with every reason. */
static struct gpu *open_first(const struct gpu_target *t, const struct gpu_libs *libs,
                              const struct logger *log, char *err, size_t err_len)
{
    char reasons[640] = "";
    size_t used = 0;
    for (size_t i = 0; i < BACKEND_COUNT; i++) {
        char why[256];
        struct gpu *g = NULL;
        int rc = try_backend(&backends[i], t, libs, log, reasons, &g, why, sizeof(why));
        if (rc == GPU_OPEN_OK)
            return g;
        if (rc == GPU_OPEN_NO_MEMORY) {
            snprintf(err, err_len, "gpu backend %s: %s", backends[i].ops->name, why);
            return NULL;
        }
        int n = snprintf(reasons + used, sizeof(reasons) - used, "%s%s unavailable: %s",
                         used ? "; " : "", backends[i].ops->name, why);
        used = n > 0 && (size_t)n < sizeof(reasons) - used ? used + (size_t)n : used;
    }
    return open_none(log, reasons, err, err_len);
}

struct gpu *gpu_open_with(const char *backend, int gpu, const struct gpu_visible *vis,
                          const struct gpu_libs *libs, const struct logger *log, char *err,
                          size_t err_len)
{
    bool is_auto = strcmp(backend, "auto") == 0;
    const struct backend *named = NULL;
    for (size_t i = 0; i < BACKEND_COUNT; i++)
        named = strcmp(backend, backends[i].ops->name) == 0 ? &backends[i] : named;
    if (strcmp(backend, "none") == 0)
        return open_none(log, "metrics.gpu_backend is \"none\"", err, err_len);
    if (!is_auto && !named) {
        snprintf(err, err_len, "unknown gpu backend \"%s\" (expected auto, rocm, nvml or none)",
                 backend);
        return NULL;
    }
    if (gpu < 0 && is_auto)
        return open_none(log, "llama.gpu is -1: no GPU pinned", err, err_len);
    if (gpu < 0) {
        snprintf(err, err_len, "gpu backend %s needs a GPU index (llama.gpu is -1)", backend);
        return NULL;
    }
    struct gpu_target t;
    if (gpu_target_resolve(gpu, vis, &t, err, err_len) != 0)
        return NULL;
    if (is_auto)
        return open_first(&t, libs, log, err, err_len);
    char why[256];
    struct gpu *g = NULL;
    if (try_backend(named, &t, libs, log, "", &g, why, sizeof(why)) != GPU_OPEN_OK)
        snprintf(err, err_len, "gpu backend %s: %s", backend, why);
    return g;
}

struct gpu *gpu_open(const char *backend, int gpu, const struct logger *log, char *err,
                     size_t err_len)
{
    struct gpu_visible vis;
    gpu_visible_from_environ(&vis);
    const struct gpu_libs libs = {.rsmi = NULL, .nvml = NULL};
    return gpu_open_with(backend, gpu, &vis, &libs, log, err, err_len);
}

int gpu_read(struct gpu *g, struct gpu_reading *out)
{
    gpu_reading_clear(out, g->ops->name);
    int rc = g->ops->read(g->state, out);
    bool silent = rc != 0;
    if (g->log && silent != g->silent) {
        if (silent)
            log_warn(g->log, "gpu",
                     "the GPU %s answered none of the metrics (fallen off the bus, or a "
                     "driver reset?): VRAM unknown, the floor does not apply",
                     out->pci_bus_id);
        else
            log_info(g->log, "gpu", "the GPU %s answers again", out->pci_bus_id);
    }
    g->silent = silent;
    return rc;
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
