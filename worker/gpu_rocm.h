/* gpu_rocm.h — private to the gpu module: the rocm-smi-lib functions the
 * rocm backend calls, as a table (the real library, or a test's fake), and
 * the backend's entry points. The only header that includes <rocm_smi.h>. */
#ifndef LLMQ_GPU_ROCM_H
#define LLMQ_GPU_ROCM_H

#include <stddef.h>
#include <stdint.h>

#include <rocm_smi/rocm_smi.h>

#include "gpu_backend.h"

/* The rocm-smi-lib functions, with the library's own signatures (the
 * compiler checks the real ones fit). */
struct rsmi_api {
    rsmi_status_t (*init)(uint64_t init_flags);
    rsmi_status_t (*shut_down)(void);
    rsmi_status_t (*num_monitor_devices)(uint32_t *num_devices);
    rsmi_status_t (*dev_pci_id_get)(uint32_t dv_ind, uint64_t *bdfid);
    rsmi_status_t (*dev_unique_id_get)(uint32_t dv_ind, uint64_t *id);
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

#define GPU_RSMI_SONAME "librocm_smi64.so.1"

/* Load the real rocm-smi-lib (dlopen GPU_RSMI_SONAME) into *api. Returns 0
 * with the handle in *library (dlclose it when done), or -1 with a message
 * in err. */
int gpu_rsmi_load(struct rsmi_api *api, void **library, char *err, size_t err_len);

extern const struct gpu_ops gpu_rocm_ops;

/* Initialise rocm-smi (`rsmi`: a table, e.g. a test's fakes, or NULL to load
 * the real library) and find `card` (a host index, counted in PCI bus
 * order, or "GPU-<hex>", ROCr's form of the device's unique id). Returns
 * GPU_OPEN_OK and the backend's state in *state, or another gpu_open_rc
 * with a message in err. */
int gpu_rocm_open(const struct rsmi_api *rsmi, const char *card, void **state, char *err,
                  size_t err_len);

#endif
