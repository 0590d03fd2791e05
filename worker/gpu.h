/* gpu.h — the worker's GPU, read for metrics and the VRAM admission floor:
 * VRAM used / total, temperatures, power and busy percent.
 *
 * A struct gpu wraps one backend behind struct gpu_ops: "rocm" (rocm-smi-lib,
 * gpu_rocm.c) or "none" (no device: every reading says present = false).
 * gpu_open("auto") tries rocm and falls back to none with one info log line
 * saying why; gpu_open("rocm") that cannot read the device is an error.
 * A metric the device cannot report reads as NAN (or vram_valid = false);
 * it never fails the other metrics.
 *
 * rocm-smi-lib is reached only through struct rsmi_api, so the rocm backend's
 * logic is tested with fakes on machines without an AMD GPU; gpu_rsmi_system()
 * is the real library. Not thread-safe: one thread owns a struct gpu. */
#ifndef LLMQ_GPU_H
#define LLMQ_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rocm_smi/rocm_smi.h>

#include "log.h"

struct gpu_reading {
    bool present;    /* a device was read (false for the none backend) */
    char backend[8]; /* "rocm" or "none" */
    char name[128];  /* the device's marketing name; "" if unknown */
    bool vram_valid; /* both VRAM figures below were read */
    uint64_t vram_total_bytes;
    uint64_t vram_used_bytes;
    double temp_edge_c; /* degrees Celsius; NAN when the sensor is absent */
    double temp_junction_c;
    double temp_mem_c;
    double power_w;      /* average power in watts; NAN when absent */
    double busy_percent; /* 0..100; NAN when absent */
};

/* An empty reading of `backend`: not present, no VRAM, every value NAN. */
void gpu_reading_clear(struct gpu_reading *r, const char *backend);

/* A backend. read fills a reading the caller cleared with gpu_reading_clear
 * and returns 0, or -1 when the device answered none of the metrics. */
struct gpu_ops {
    const char *name;
    int (*read)(void *state, struct gpu_reading *out);
    void (*close)(void *state);
};

/* The rocm-smi-lib functions the rocm backend calls, with the library's own
 * signatures (the compiler checks the real ones fit). */
struct rsmi_api {
    rsmi_status_t (*init)(uint64_t init_flags);
    rsmi_status_t (*shut_down)(void);
    rsmi_status_t (*num_monitor_devices)(uint32_t *num_devices);
    rsmi_status_t (*dev_name_get)(uint32_t dv_ind, char *name, size_t len);
    rsmi_status_t (*dev_memory_total_get)(uint32_t dv_ind, rsmi_memory_type_t mem_type,
                                          uint64_t *total);
    rsmi_status_t (*dev_memory_usage_get)(uint32_t dv_ind, rsmi_memory_type_t mem_type,
                                          uint64_t *used);
    rsmi_status_t (*dev_temp_metric_get)(uint32_t dv_ind, uint32_t sensor_type,
                                         rsmi_temperature_metric_t metric, int64_t *temperature);
    rsmi_status_t (*dev_power_ave_get)(uint32_t dv_ind, uint32_t sensor_ind, uint64_t *power);
    rsmi_status_t (*dev_busy_percent_get)(uint32_t dv_ind, uint32_t *busy_percent);
    rsmi_status_t (*status_string)(rsmi_status_t status, const char **status_string);
};

/* The real rocm-smi-lib. */
const struct rsmi_api *gpu_rsmi_system(void);

struct gpu;

/* Open the backend named `backend` ("auto", "rocm" or "none") for device
 * `index` (llama.gpu; -1 = no pinned GPU, which means none). Logs one info
 * line naming the backend in use, and for "auto" why rocm was not used.
 * Returns NULL with a message in err when "rocm" cannot be used, the name is
 * unknown, or memory runs out. gpu_open uses gpu_rsmi_system(); tests pass
 * a fake rsmi to gpu_open_rsmi. */
struct gpu *gpu_open(const char *backend, int index, const struct logger *log, char *err,
                     size_t err_len);
struct gpu *gpu_open_rsmi(const char *backend, int index, const struct rsmi_api *rsmi,
                          const struct logger *log, char *err, size_t err_len);

/* Wrap any backend (tests feed readings through their own ops). `state` is
 * handed to ops->read and ops->close. NULL if out of memory. */
struct gpu *gpu_open_ops(const struct gpu_ops *ops, void *state);

/* Read the device now (rocm: a few sysfs reads, well under a millisecond).
 * `out` is always filled; returns 0, or -1 when a present device answered
 * none of the metrics (out->present stays true, every value unknown). */
int gpu_read(struct gpu *g, struct gpu_reading *out);

const char *gpu_backend_name(const struct gpu *g); /* "rocm", "none", ... */

/* The VRAM admission rule: true when free VRAM is known and under
 * `floor_bytes`. No floor (0), no device or unknown VRAM never block. */
bool gpu_vram_below_floor(const struct gpu_reading *r, uint64_t floor_bytes);

void gpu_close(struct gpu *g); /* NULL is fine */

/* ---- the rocm backend (gpu_rocm.c), for gpu.c ---- */

/* Why the rocm backend could not open. */
enum gpu_rocm_error {
    GPU_ROCM_INIT_FAILED = 1, /* rsmi_init failed: no amdgpu driver / sysfs */
    GPU_ROCM_NO_DEVICE,       /* initialised, but no device to monitor */
    GPU_ROCM_BAD_INDEX,       /* `index` is not below the number of devices */
    GPU_ROCM_NO_MEMORY,
};

extern const struct gpu_ops gpu_rocm_ops;

/* Initialise rocm-smi and check device `index`. Returns 0 and the backend's
 * state in *state, or a gpu_rocm_error with a message in err. */
int gpu_rocm_open(const struct rsmi_api *rsmi, unsigned index, void **state, char *err,
                  size_t err_len);

#endif
