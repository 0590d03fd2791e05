/* gpu_rocm.c — the rocm backend of gpu.h: one AMD GPU read through
 * rocm-smi-lib (reached only through struct rsmi_api), found by PCI bus id
 * or unique id, with the library's units turned into bytes, degrees
 * Celsius, watts and percent. */
#include "gpu_rocm.h"

#include "dl_table.h"

#include <dlfcn.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_DEVICES = 64 };

struct rocm_state {
    struct rsmi_api api; /* the table in use */
    void *library;       /* the dlopen handle; NULL for a table the caller owns */
    uint32_t index;      /* rocm-smi's device index of the card */
    char name[128];
    char pci_bus_id[20];
};

/* Each table entry and its symbol in librocm_smi64.so.1. */
static const struct dl_symbol rsmi_symbols[] = {
    {"rsmi_init", offsetof(struct rsmi_api, init)},
    {"rsmi_shut_down", offsetof(struct rsmi_api, shut_down)},
    {"rsmi_num_monitor_devices", offsetof(struct rsmi_api, num_monitor_devices)},
    {"rsmi_dev_pci_id_get", offsetof(struct rsmi_api, dev_pci_id_get)},
    {"rsmi_dev_unique_id_get", offsetof(struct rsmi_api, dev_unique_id_get)},
    {"rsmi_dev_name_get", offsetof(struct rsmi_api, dev_name_get)},
    {"rsmi_dev_memory_total_get", offsetof(struct rsmi_api, dev_memory_total_get)},
    {"rsmi_dev_memory_usage_get", offsetof(struct rsmi_api, dev_memory_usage_get)},
    {"rsmi_dev_temp_metric_get", offsetof(struct rsmi_api, dev_temp_metric_get)},
    {"rsmi_dev_power_ave_get", offsetof(struct rsmi_api, dev_power_ave_get)},
    {"rsmi_dev_busy_percent_get", offsetof(struct rsmi_api, dev_busy_percent_get)},
    {"rsmi_status_string", offsetof(struct rsmi_api, status_string)},
};

int gpu_rsmi_load(struct rsmi_api *api, void **library, char *err, size_t err_len)
{
    *library =
        dl_table_load(GPU_RSMI_SONAME, rsmi_symbols, sizeof(rsmi_symbols) / sizeof(rsmi_symbols[0]),
                      api, "rocm-smi-lib too old?", err, err_len);
    return *library ? 0 : -1;
}

static void describe_status(const struct rsmi_api *rsmi, rsmi_status_t status, char *buf,
                            size_t len)
{
    const char *text = NULL;
    if (rsmi->status_string(status, &text) == RSMI_STATUS_SUCCESS && text) {
        snprintf(buf, len, "%s", text);
    } else {
        snprintf(buf, len, "rsmi status %d", (int)status);
    }
}

/* rocm-smi's index of `card` among `devices`, or -1 with a message in err. */
static int find_card(const struct rsmi_api *rsmi, uint32_t devices, const char *card,
                     uint64_t *bdf_out, char *err, size_t err_len)
{
    uint64_t bdf[MAX_DEVICES];
    unsigned n = devices < MAX_DEVICES ? devices : MAX_DEVICES;
    for (unsigned i = 0; i < n; i++) {
        if (rsmi->dev_pci_id_get(i, &bdf[i]) != RSMI_STATUS_SUCCESS) {
            snprintf(err, err_len, "rocm-smi cannot read the PCI bus id of device %u", i);
            return -1;
        }
    }
    unsigned index = 0;
    int found = -1;
    if (gpu_card_index(card, &index)) {
        found = gpu_card_in_pci_order(bdf, n, index);
        if (found < 0)
            snprintf(err, err_len, "GPU %u out of range (rocm-smi sees %u device%s)", index, n,
                     n == 1 ? "" : "s");
    } else {
        char *end = NULL;
        uint64_t want = strncmp(card, "GPU-", 4) == 0 ? strtoull(card + 4, &end, 16) : 0;
        uint64_t id = 0;
        for (unsigned i = 0; end && *end == '\0' && found < 0 && i < n; i++) {
            if (rsmi->dev_unique_id_get(i, &id) == RSMI_STATUS_SUCCESS && id == want)
                found = (int)i;
        }
        if (found < 0)
            snprintf(err, err_len, "no device with unique id %.*s (rocm-smi sees %u)", 40, card, n);
    }
    if (found >= 0)
        *bdf_out = bdf[found];
    return found;
}

/* rsmi_init, then the card's device index (its PCI bus id in *bdf), or -1
 * with a message in err (rocm-smi shut down again). */
static int open_device(const struct rsmi_api *rsmi, const char *card, uint64_t *bdf, char *err,
                       size_t err_len)
{
    char why[160];
    rsmi_status_t status = rsmi->init(0);
    if (status != RSMI_STATUS_SUCCESS) {
        describe_status(rsmi, status, why, sizeof(why));
        snprintf(err, err_len, "rsmi_init failed: %s", why);
        return -1;
    }
    uint32_t devices = 0;
    status = rsmi->num_monitor_devices(&devices);
    int index = -1;
    if (status != RSMI_STATUS_SUCCESS) {
        describe_status(rsmi, status, why, sizeof(why));
        snprintf(err, err_len, "rsmi_num_monitor_devices failed: %s", why);
    } else if (devices == 0) {
        snprintf(err, err_len, "rocm-smi found no GPU");
    } else {
        index = find_card(rsmi, devices, card, bdf, err, err_len);
    }
    if (index < 0)
        rsmi->shut_down();
    return index;
}

int gpu_rocm_open(const struct rsmi_api *rsmi, const char *card, void **state, char *err,
                  size_t err_len)
{
    struct rocm_state *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return GPU_OPEN_NO_MEMORY;
    }
    if (rsmi) {
        s->api = *rsmi;
    } else if (gpu_rsmi_load(&s->api, &s->library, err, err_len) != 0) {
        free(s);
        return GPU_OPEN_UNUSABLE;
    }
    uint64_t bdf = 0;
    int index = open_device(&s->api, card, &bdf, err, err_len);
    if (index < 0) {
        if (s->library)
            dlclose(s->library);
        free(s);
        return GPU_OPEN_UNUSABLE;
    }
    s->index = (uint32_t)index;
    gpu_bdf_format(bdf, s->pci_bus_id, sizeof(s->pci_bus_id));
    if (s->api.dev_name_get(s->index, s->name, sizeof(s->name)) != RSMI_STATUS_SUCCESS) {
        s->name[0] = '\0';
    }
    s->name[sizeof(s->name) - 1] = '\0';
    *state = s;
    return GPU_OPEN_OK;
}

/* One temperature sensor in degrees Celsius (rocm-smi: millidegrees). */
static double read_temperature(const struct rocm_state *s, rsmi_temperature_type_t sensor)
{
    int64_t millidegrees = 0;
    if (s->api.dev_temp_metric_get(s->index, sensor, RSMI_TEMP_CURRENT, &millidegrees) !=
        RSMI_STATUS_SUCCESS) {
        return NAN;
    }
    return (double)millidegrees / 1000.0;
}

static int rocm_read(void *state, struct gpu_reading *out)
{
    const struct rocm_state *s = state;
    const struct rsmi_api *rsmi = &s->api;
    out->present = true;
    snprintf(out->name, sizeof(out->name), "%s", s->name);
    snprintf(out->pci_bus_id, sizeof(out->pci_bus_id), "%s", s->pci_bus_id);

    uint64_t total = 0, used = 0;
    out->vram_valid =
        rsmi->dev_memory_total_get(s->index, RSMI_MEM_TYPE_VRAM, &total) == RSMI_STATUS_SUCCESS &&
        rsmi->dev_memory_usage_get(s->index, RSMI_MEM_TYPE_VRAM, &used) == RSMI_STATUS_SUCCESS;
    if (out->vram_valid) {
        out->vram_total_bytes = total;
        out->vram_used_bytes = used;
    }
    out->temp_edge_c = read_temperature(s, RSMI_TEMP_TYPE_EDGE);
    out->temp_junction_c = read_temperature(s, RSMI_TEMP_TYPE_JUNCTION);
    out->temp_mem_c = read_temperature(s, RSMI_TEMP_TYPE_MEMORY);

    uint64_t microwatts = 0;
    if (rsmi->dev_power_ave_get(s->index, 0, &microwatts) == RSMI_STATUS_SUCCESS) {
        out->power_w = (double)microwatts / 1e6;
    }
    uint32_t busy = 0;
    if (rsmi->dev_busy_percent_get(s->index, &busy) == RSMI_STATUS_SUCCESS) {
        out->busy_percent = busy;
    }

    bool any = out->vram_valid || !isnan(out->temp_edge_c) || !isnan(out->temp_junction_c) ||
               !isnan(out->temp_mem_c) || !isnan(out->power_w) || !isnan(out->busy_percent);
    return any ? 0 : -1;
}

static void rocm_close(void *state)
{
    struct rocm_state *s = state;
    s->api.shut_down();
    if (s->library)
        dlclose(s->library);
    free(s);
}

const struct gpu_ops gpu_rocm_ops = {
    .name = "rocm",
    .read = rocm_read,
    .close = rocm_close,
};
