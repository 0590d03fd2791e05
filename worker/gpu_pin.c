/* gpu_pin.c — which card llama.gpu names: resolved against the GPU lists
 * the worker inherited from its scheduler, turned into the variables that
 * pin llama-server, and the card-naming rules (host index in PCI bus order,
 * PCI addresses) the backends use to read that same card. */
#include "gpu_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const child_env_names[GPU_CHILD_ENV] = {
    "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"};

uint64_t gpu_bdf_pack(unsigned domain, unsigned bus, unsigned device, unsigned function)
{
    return (uint64_t)domain << 32 | (uint64_t)(bus & 0xffu) << 8 | (uint64_t)(device & 0x1fu) << 3 |
           (function & 7u);
}

void gpu_bdf_format(uint64_t bdf, char *out, size_t len)
{
    snprintf(out, len, "%04x:%02x:%02x.%x", (unsigned)(bdf >> 32) & 0xffffu,
             (unsigned)(bdf >> 8) & 0xffu, (unsigned)(bdf >> 3) & 0x1fu, (unsigned)bdf & 7u);
}

bool gpu_card_index(const char *card, unsigned *index)
{
    size_t digits = strspn(card, "0123456789");
    if (digits == 0 || digits > 6 || card[digits] != '\0')
        return false;
    *index = (unsigned)strtoul(card, NULL, 10);
    return true;
}

int gpu_card_in_pci_order(const uint64_t *bdf, unsigned n, unsigned index)
{
    if (index >= n)
        return -1;
    /* The device with exactly `index` devices at lower addresses. */
    for (unsigned i = 0; i < n; i++) {
        unsigned below = 0;
        for (unsigned j = 0; j < n; j++)
            below += bdf[j] < bdf[i] || (bdf[j] == bdf[i] && j < i);
        if (below == index)
            return (int)i;
    }
    return -1;
}

void gpu_visible_from_environ(struct gpu_visible *out)
{
    out->rocr = getenv("ROCR_VISIBLE_DEVICES");
    out->hip = getenv("HIP_VISIBLE_DEVICES");
    out->cuda = getenv("CUDA_VISIBLE_DEVICES");
}

/* Entry `n` of the list `value` of variable `name` into out; 0, or -1 with
 * a message in err. */
static int list_entry(const char *name, const char *value, unsigned n, char *out, size_t len,
                      char *err, size_t err_len)
{
    unsigned count = 0;
    const char *p = value;
    while (*p) {
        size_t span = strcspn(p, ",");
        bool id = (strncmp(p, "GPU-", 4) == 0 || strncmp(p, "MIG-", 4) == 0) && span > 4 &&
                  strspn(p, "0123456789abcdefABCDEF-GPUMI/") >= span;
        bool index = span > 0 && strspn(p, "0123456789") >= span;
        if ((!id && !index) || span >= len) {
            snprintf(err, err_len,
                     "inherited %s=%.64s: entry %u is neither a GPU index nor a GPU-/MIG- id", name,
                     value, count);
            return -1;
        }
        if (count++ == n)
            snprintf(out, len, "%.*s", (int)span, p);
        p += span + (p[span] == ',');
    }
    if (n >= count) {
        snprintf(err, err_len,
                 "llama.gpu = %u, but the worker inherited %s=%.64s, which lists %u GPU%s "
                 "(llama.gpu counts from 0 within that list)",
                 n, name, value, count, count == 1 ? "" : "s");
        return -1;
    }
    return 0;
}

/* The ROCm card: ROCR_VISIBLE_DEVICES applies first; HIP_VISIBLE_DEVICES,
 * or else CUDA_VISIBLE_DEVICES, indexes into what it left. */
static int resolve_rocm(unsigned n, const struct gpu_visible *v, struct gpu_target *t, char *err,
                        size_t err_len)
{
    const char *sel_name = v->hip ? "HIP_VISIBLE_DEVICES" : "CUDA_VISIBLE_DEVICES";
    const char *sel = v->hip ? v->hip : v->cuda;
    char entry[GPU_CARD_LEN];
    unsigned k = n;
    size_t w = 0;
    if (sel) {
        if (list_entry(sel_name, sel, n, entry, sizeof(entry), err, err_len) != 0)
            return -1;
        w += (size_t)snprintf(t->rocm_why, sizeof(t->rocm_why), "entry %u of inherited %s=%.48s", n,
                              sel_name, sel);
        if (!gpu_card_index(entry, &k)) { /* an id names its card whatever ROCR says */
            snprintf(t->rocm, sizeof(t->rocm), "%s", entry);
            return 0;
        }
    }
    if (v->rocr) {
        if (list_entry("ROCR_VISIBLE_DEVICES", v->rocr, k, t->rocm, sizeof(t->rocm), err,
                       err_len) != 0)
            return -1;
        snprintf(t->rocm_why + w, sizeof(t->rocm_why) - w,
                 "%sentry %u of inherited ROCR_VISIBLE_DEVICES=%.48s", w ? ", then " : "", k,
                 v->rocr);
    } else {
        snprintf(t->rocm, sizeof(t->rocm), "%u", k);
        if (!sel)
            snprintf(t->rocm_why, sizeof(t->rocm_why), "host GPU %u in PCI bus order", k);
    }
    return 0;
}

int gpu_target_resolve(int gpu, const struct gpu_visible *vis, struct gpu_target *out, char *err,
                       size_t err_len)
{
    memset(out, 0, sizeof(*out));
    out->gpu = gpu;
    if (gpu < 0)
        return 0;
    unsigned n = (unsigned)gpu;
    if (resolve_rocm(n, vis, out, err, err_len) != 0)
        return -1;
    if (!vis->cuda) {
        snprintf(out->cuda, sizeof(out->cuda), "%u", n);
        snprintf(out->cuda_why, sizeof(out->cuda_why), "host GPU %u in PCI bus order", n);
        return 0;
    }
    if (list_entry("CUDA_VISIBLE_DEVICES", vis->cuda, n, out->cuda, sizeof(out->cuda), err,
                   err_len) != 0)
        return -1;
    snprintf(out->cuda_why, sizeof(out->cuda_why),
             "entry %u of inherited CUDA_VISIBLE_DEVICES=%.48s", n, vis->cuda);
    return 0;
}

bool gpu_child_env_replaces(const char *env_entry)
{
    for (size_t i = 0; i < GPU_CHILD_ENV; i++) {
        size_t len = strlen(child_env_names[i]);
        if (strncmp(env_entry, child_env_names[i], len) == 0 && env_entry[len] == '=')
            return true;
    }
    return false;
}

void gpu_target_child_env(const struct gpu_target *t, char env[GPU_CHILD_ENV][GPU_CHILD_ENV_LEN])
{
    const char *values[GPU_CHILD_ENV] = {t->rocm, "0", t->cuda, "PCI_BUS_ID"};
    for (size_t i = 0; i < GPU_CHILD_ENV; i++)
        snprintf(env[i], GPU_CHILD_ENV_LEN, "%s=%s", child_env_names[i], values[i]);
}
