/* gpu_nvml.h — private to the gpu module: the part of NVML (NVIDIA's
 * management library, nvml.h) the nvml backend uses, declared here with
 * NVML's exact types and signatures so nothing depends on NVIDIA's headers
 * at build time; the functions are looked up with dlopen/dlsym in
 * libnvidia-ml.so.1 at run time (or are a test's fakes). */
#ifndef LLMQ_GPU_NVML_H
#define LLMQ_GPU_NVML_H

#include <stddef.h>

#include "gpu_backend.h"

/* ---- from nvml.h (the versions named by its _v2/_v3 defines) ---- */

typedef struct nvmlDevice_st *nvmlDevice_t;

typedef enum nvmlReturn_enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_UNKNOWN = 999,
} nvmlReturn_t;

#define NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE    32
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE 16
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE       96

typedef struct nvmlPciInfo_st {
    char busIdLegacy[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;
    unsigned int pciSubSystemId;
    char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
} nvmlPciInfo_t;

typedef struct nvmlMemory_st {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct nvmlUtilization_st {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;

typedef enum nvmlTemperatureSensors_enum {
    NVML_TEMPERATURE_GPU = 0,
} nvmlTemperatureSensors_t;

/* ---- the table ---- */

/* The NVML functions the backend calls; the comment names each symbol. */
struct nvml_api {
    nvmlReturn_t (*init)(void);                            /* nvmlInit_v2 */
    nvmlReturn_t (*shutdown)(void);                        /* nvmlShutdown */
    const char *(*error_string)(nvmlReturn_t result);      /* nvmlErrorString */
    nvmlReturn_t (*device_get_count)(unsigned int *count); /* nvmlDeviceGetCount_v2 */
    nvmlReturn_t (*device_get_handle_by_index)(unsigned int index,
                                               nvmlDevice_t *device); /* ..ByIndex_v2 */
    nvmlReturn_t (*device_get_handle_by_uuid)(const char *uuid,
                                              nvmlDevice_t *device); /* ..ByUUID */
    nvmlReturn_t (*device_get_pci_info)(nvmlDevice_t device,
                                        nvmlPciInfo_t *pci); /* nvmlDeviceGetPciInfo_v3 */
    nvmlReturn_t (*device_get_name)(nvmlDevice_t device, char *name,
                                    unsigned int length); /* nvmlDeviceGetName */
    nvmlReturn_t (*device_get_memory_info)(nvmlDevice_t device,
                                           nvmlMemory_t *memory); /* ..GetMemoryInfo */
    nvmlReturn_t (*device_get_temperature)(nvmlDevice_t device, nvmlTemperatureSensors_t sensor,
                                           unsigned int *temp); /* ..GetTemperature */
    nvmlReturn_t (*device_get_power_usage)(nvmlDevice_t device,
                                           unsigned int *milliwatts); /* ..GetPowerUsage */
    nvmlReturn_t (*device_get_utilization_rates)(
        nvmlDevice_t device, nvmlUtilization_t *utilization); /* ..GetUtilizationRates */
};

extern const struct gpu_ops gpu_nvml_ops;

/* Find `card` (a host index, counted in PCI bus order as nvidia-smi lists
 * them, or "GPU-<uuid>") through `api`, or through libnvidia-ml.so.1 loaded
 * now with dlopen when api is NULL (kept open until the backend closes).
 * Returns GPU_OPEN_OK and the backend's state in *state, or another
 * gpu_open_rc with a message in err (no library, a symbol missing, no
 * driver, no such card; "MIG-..." instances are not read). */
int gpu_nvml_open(const struct nvml_api *api, const char *card, void **state, char *err,
                  size_t err_len);

#endif
