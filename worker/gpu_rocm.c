/* gpu_rocm.c — the rocm backend of gpu.h: one AMD GPU read through
 * rocm-smi-lib (reached only through struct rsmi_api), with the library's
 * units turned into bytes, degrees Celsius, watts and percent. */
#include "gpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rocm_state {
    const struct rsmi_api *rsmi;
    uint32_t index;
    char name[128];
};

static const struct rsmi_api rsmi_system = {
    .init = rsmi_init,
    .shut_down = rsmi_shut_down,
    .num_monitor_devices = rsmi_num_monitor_devices,
    .dev_name_get = rsmi_dev_name_get,
    .dev_memory_total_get = rsmi_dev_memory_total_get,
    .dev_memory_usage_get = rsmi_dev_memory_usage_get,
    .dev_temp_metric_get = rsmi_dev_temp_metric_get,
    .dev_power_ave_get = rsmi_dev_power_ave_get,
    .dev_busy_percent_get = rsmi_dev_busy_percent_get,
    .status_string = rsmi_status_string,
};

const struct rsmi_api *gpu_rsmi_system(void)
{
    return &rsmi_system;
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

int gpu_rocm_open(const struct rsmi_api *rsmi, unsigned index, void **state, char *err,
                  size_t err_len)
{
    char why[160];
    rsmi_status_t status = rsmi->init(0);
    if (status != RSMI_STATUS_SUCCESS) {
        describe_status(rsmi, status, why, sizeof(why));
        snprintf(err, err_len, "rsmi_init failed: %s", why);
        return GPU_ROCM_INIT_FAILED;
    }
    uint32_t devices = 0;
    status = rsmi->num_monitor_devices(&devices);
    int rc = 0;
    if (status != RSMI_STATUS_SUCCESS) {
        describe_status(rsmi, status, why, sizeof(why));
        snprintf(err, err_len, "rsmi_num_monitor_devices failed: %s", why);
        rc = GPU_ROCM_NO_DEVICE;
    } else if (devices == 0) {
        snprintf(err, err_len, "rocm-smi found no GPU");
        rc = GPU_ROCM_NO_DEVICE;
    } else if (index >= devices) {
        snprintf(err, err_len, "GPU index %u out of range (rocm-smi sees %u device%s)", index,
                 devices, devices == 1 ? "" : "s");
        rc = GPU_ROCM_BAD_INDEX;
    }
    struct rocm_state *s = rc == 0 ? calloc(1, sizeof(*s)) : NULL;
    if (rc == 0 && !s) {
        snprintf(err, err_len, "out of memory");
        rc = GPU_ROCM_NO_MEMORY;
    }
    if (rc != 0) {
        rsmi->shut_down();
        return rc;
    }
    s->rsmi = rsmi;
    s->index = index;
    if (rsmi->dev_name_get(index, s->name, sizeof(s->name)) != RSMI_STATUS_SUCCESS) {
        s->name[0] = '\0';
    }
    s->name[sizeof(s->name) - 1] = '\0';
    *state = s;
    return 0;
}

/* One temperature sensor in degrees Celsius (rocm-smi: millidegrees). */
static double read_temperature(const struct rocm_state *s, rsmi_temperature_type_t sensor)
{
    int64_t millidegrees = 0;
    if (s->rsmi->dev_temp_metric_get(s->index, sensor, RSMI_TEMP_CURRENT, &millidegrees) !=
        RSMI_STATUS_SUCCESS) {
        return NAN;
    }
    return (double)millidegrees / 1000.0;
}

static int rocm_read(void *state, struct gpu_reading *out)
{
    const struct rocm_state *s = state;
    const struct rsmi_api *rsmi = s->rsmi;
    out->present = true;
    snprintf(out->name, sizeof(out->name), "%s", s->name);

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
    s->rsmi->shut_down();
    free(s);
}

const struct gpu_ops gpu_rocm_ops = {
    .name = "rocm",
    .read = rocm_read,
    .close = rocm_close,
};
