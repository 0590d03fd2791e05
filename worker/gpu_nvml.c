/* gpu_nvml.c — the nvml backend of gpu.h: one NVIDIA GPU read through NVML,
 * with libnvidia-ml.so.1 loaded by dlopen at open (so one binary serves
 * machines with and without NVIDIA's driver), found by PCI bus id or UUID,
 * and its units turned into bytes, degrees Celsius, watts and percent.
 * NVML reports one die temperature, read into temp_edge_c (the sensor
 * nvidia-smi shows); junction and memory stay NAN. */
#include "gpu_nvml.h"

#include "dl_table.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_DEVICES = 64 };

struct nvml_state {
    struct nvml_api api;
    void *library; /* the dlopen handle; NULL for a table the caller owns */
    nvmlDevice_t device;
    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
    char pci_bus_id[20];
};

/* Each table entry and the versioned symbol it is. */
static const struct dl_symbol nvml_symbols[] = {
    {"nvmlInit_v2", offsetof(struct nvml_api, init)},
    {"nvmlShutdown", offsetof(struct nvml_api, shutdown)},
    {"nvmlErrorString", offsetof(struct nvml_api, error_string)},
    {"nvmlDeviceGetCount_v2", offsetof(struct nvml_api, device_get_count)},
    {"nvmlDeviceGetHandleByIndex_v2", offsetof(struct nvml_api, device_get_handle_by_index)},
    {"nvmlDeviceGetHandleByUUID", offsetof(struct nvml_api, device_get_handle_by_uuid)},
    {"nvmlDeviceGetPciInfo_v3", offsetof(struct nvml_api, device_get_pci_info)},
    {"nvmlDeviceGetName", offsetof(struct nvml_api, device_get_name)},
    {"nvmlDeviceGetMemoryInfo", offsetof(struct nvml_api, device_get_memory_info)},
    {"nvmlDeviceGetTemperature", offsetof(struct nvml_api, device_get_temperature)},
    {"nvmlDeviceGetPowerUsage", offsetof(struct nvml_api, device_get_power_usage)},
    {"nvmlDeviceGetUtilizationRates", offsetof(struct nvml_api, device_get_utilization_rates)},
};

static const char *describe(const struct nvml_api *api, nvmlReturn_t rc)
{
    const char *text = api->error_string(rc);
    return text ? text : "unknown NVML error";
}

static bool pci_of(const struct nvml_api *api, nvmlDevice_t device, uint64_t *bdf)
{
    nvmlPciInfo_t pci;
    memset(&pci, 0, sizeof(pci));
    if (api->device_get_pci_info(device, &pci) != NVML_SUCCESS)
        return false;
    unsigned function = 0;
    const char *dot = strrchr(pci.busId, '.');
    if (dot)
        function = (unsigned)strtoul(dot + 1, NULL, 16) & 7u;
    *bdf = gpu_bdf_pack(pci.domain, pci.bus, pci.device, function);
    return true;
}

/* The host's card `index` in PCI bus order; 0 or -1 with a message. */
static int find_by_index(struct nvml_state *s, unsigned index, uint64_t *bdf, char *err,
                         size_t err_len)
{
    const struct nvml_api *api = &s->api;
    unsigned count = 0;
    nvmlReturn_t rc = api->device_get_count(&count);
    if (rc != NVML_SUCCESS) {
        snprintf(err, err_len, "nvmlDeviceGetCount failed: %s", describe(api, rc));
        return -1;
    }
    unsigned n = count < MAX_DEVICES ? count : MAX_DEVICES;
    nvmlDevice_t devices[MAX_DEVICES];
    uint64_t bdfs[MAX_DEVICES];
    for (unsigned i = 0; i < n; i++) {
        if (api->device_get_handle_by_index(i, &devices[i]) != NVML_SUCCESS ||
            !pci_of(api, devices[i], &bdfs[i])) {
            snprintf(err, err_len, "NVML cannot read the PCI bus id of device %u", i);
            return -1;
        }
    }
    int at = gpu_card_in_pci_order(bdfs, n, index);
    if (at < 0) {
        snprintf(err, err_len, "GPU %u out of range (NVML sees %u device%s)", index, n,
                 n == 1 ? "" : "s");
        return -1;
    }
    s->device = devices[at];
    *bdf = bdfs[at];
    return 0;
}

/* The card named by `card`; 0 or -1 with a message in err. */
static int find_card(struct nvml_state *s, const char *card, char *err, size_t err_len)
{
    unsigned index = 0;
    uint64_t bdf = 0;
    if (gpu_card_index(card, &index)) {
        if (find_by_index(s, index, &bdf, err, err_len) != 0)
            return -1;
    } else if (strncmp(card, "GPU-", 4) == 0) {
        nvmlReturn_t rc = s->api.device_get_handle_by_uuid(card, &s->device);
        if (rc != NVML_SUCCESS || !pci_of(&s->api, s->device, &bdf)) {
            snprintf(err, err_len, "no GPU %.*s: %s", 48, card,
                     rc == NVML_SUCCESS ? "PCI bus id unreadable" : describe(&s->api, rc));
            return -1;
        }
    } else {
        snprintf(err, err_len, "cannot read %.*s (MIG instances are not read)", 48, card);
        return -1;
    }
    gpu_bdf_format(bdf, s->pci_bus_id, sizeof(s->pci_bus_id));
    if (s->api.device_get_name(s->device, s->name, sizeof(s->name)) != NVML_SUCCESS)
        s->name[0] = '\0';
    s->name[sizeof(s->name) - 1] = '\0';
    return 0;
}

int gpu_nvml_open(const struct nvml_api *api, const char *card, void **state, char *err,
                  size_t err_len)
{
    struct nvml_state *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return GPU_OPEN_NO_MEMORY;
    }
    if (api) {
        s->api = *api;
    } else if (!(s->library = dl_table_load("libnvidia-ml.so.1", nvml_symbols,
                                            sizeof(nvml_symbols) / sizeof(nvml_symbols[0]), &s->api,
                                            "driver too old?", err, err_len))) {
        free(s);
        return GPU_OPEN_UNUSABLE;
    }
    nvmlReturn_t rc = s->api.init();
    if (rc != NVML_SUCCESS) {
        snprintf(err, err_len, "nvmlInit failed: %s", describe(&s->api, rc));
    } else if (find_card(s, card, err, err_len) != 0) {
        s->api.shutdown();
        rc = NVML_ERROR_NOT_FOUND;
    }
    if (rc != NVML_SUCCESS) {
        if (s->library)
            dlclose(s->library);
        free(s);
        return GPU_OPEN_UNUSABLE;
    }
    *state = s;
    return GPU_OPEN_OK;
}

static int nvml_read(void *state, struct gpu_reading *out)
{
    const struct nvml_state *s = state;
    const struct nvml_api *api = &s->api;
    out->present = true;
    snprintf(out->name, sizeof(out->name), "%s", s->name);
    snprintf(out->pci_bus_id, sizeof(out->pci_bus_id), "%s", s->pci_bus_id);

    nvmlMemory_t memory;
    memset(&memory, 0, sizeof(memory));
    out->vram_valid = api->device_get_memory_info(s->device, &memory) == NVML_SUCCESS;
    if (out->vram_valid) {
        out->vram_total_bytes = memory.total;
        out->vram_used_bytes = memory.used;
    }
    unsigned degrees = 0;
    if (api->device_get_temperature(s->device, NVML_TEMPERATURE_GPU, &degrees) == NVML_SUCCESS)
        out->temp_edge_c = degrees;
    unsigned milliwatts = 0;
    if (api->device_get_power_usage(s->device, &milliwatts) == NVML_SUCCESS)
        out->power_w = (double)milliwatts / 1000.0;
    nvmlUtilization_t util = {0, 0};
    if (api->device_get_utilization_rates(s->device, &util) == NVML_SUCCESS)
        out->busy_percent = util.gpu;

    bool any = out->vram_valid || !isnan(out->temp_edge_c) || !isnan(out->power_w) ||
               !isnan(out->busy_percent);
    return any ? 0 : -1;
}

static void nvml_close(void *state)
{
    struct nvml_state *s = state;
    s->api.shutdown();
    if (s->library)
        dlclose(s->library);
    free(s);
}

const struct gpu_ops gpu_nvml_ops = {
    .name = "nvml",
    .read = nvml_read,
    .close = nvml_close,
};
