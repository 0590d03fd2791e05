/* test_gpu_fakes.h — what the gpu unit tests share: a fake rocm-smi-lib and
 * a fake NVML (each one file-level script, reset before each test), the
 * seam that opens the gpu module on them, and a logger whose lines land in
 * a pipe. Included by test_gpu.c, test_gpu_nvml.c and test_gpu_pin.c. */
#ifndef LLMQ_TEST_GPU_FAKES_H
#define LLMQ_TEST_GPU_FAKES_H

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gpu_backend.h"
#include "gpu_nvml.h"
#include "gpu_rocm.h"

enum { FAKE_DEVICES = 4 };

/* ---- rocm-smi-lib: by default two AMD GPUs, rocm-smi's device 0 at PCI
 * bus c1 and device 1 at bus 03, so the host's GPU 0 (PCI order) is rocm-smi
 * device 1 ---- */

struct fake_rsmi {
    rsmi_status_t init_status;
    uint32_t devices;
    uint64_t bdf[FAKE_DEVICES];
    uint64_t unique_id[FAKE_DEVICES];
    int inits, shut_downs;
    uint64_t vram_total, vram_used;
    rsmi_status_t vram_status, power_status, busy_status, name_status;
    int64_t temp_mc[3]; /* edge, junction, memory in millidegrees */
    rsmi_status_t temp_status[3];
    uint64_t power_uw;
    uint32_t busy;
    uint32_t last_index; /* device index of the latest per-device read */
};

static struct fake_rsmi fake;

static rsmi_status_t fake_init(uint64_t flags)
{
    assert_int_equal(flags, 0);
    if (fake.init_status == RSMI_STATUS_SUCCESS) {
        fake.inits++;
    }
    return fake.init_status;
}

static rsmi_status_t fake_shut_down(void)
{
    fake.shut_downs++;
    return RSMI_STATUS_SUCCESS;
}

static rsmi_status_t fake_num_devices(uint32_t *n)
{
    *n = fake.devices;
    return RSMI_STATUS_SUCCESS;
}

static rsmi_status_t fake_pci_id(uint32_t dv, uint64_t *bdf)
{
    assert_true(dv < fake.devices);
    *bdf = fake.bdf[dv];
    return RSMI_STATUS_SUCCESS;
}

static rsmi_status_t fake_unique_id(uint32_t dv, uint64_t *id)
{
    assert_true(dv < fake.devices);
    *id = fake.unique_id[dv];
    return RSMI_STATUS_SUCCESS;
}

static rsmi_status_t fake_name(uint32_t dv, char *name, size_t len)
{
    fake.last_index = dv;
    if (fake.name_status == RSMI_STATUS_SUCCESS) {
        snprintf(name, len, "AMD Instinct MI210");
    }
    return fake.name_status;
}

static rsmi_status_t fake_mem_total(uint32_t dv, rsmi_memory_type_t type, uint64_t *total)
{
    fake.last_index = dv;
    assert_int_equal(type, RSMI_MEM_TYPE_VRAM);
    *total = fake.vram_total;
    return fake.vram_status;
}

static rsmi_status_t fake_mem_used(uint32_t dv, rsmi_memory_type_t type, uint64_t *used)
{
    fake.last_index = dv;
    assert_int_equal(type, RSMI_MEM_TYPE_VRAM);
    *used = fake.vram_used;
    return fake.vram_status;
}

static rsmi_status_t fake_temp(uint32_t dv, uint32_t sensor, rsmi_temperature_metric_t metric,
                               int64_t *temp)
{
    fake.last_index = dv;
    assert_int_equal(metric, RSMI_TEMP_CURRENT);
    assert_true(sensor <= RSMI_TEMP_TYPE_MEMORY);
    static const int slot[] = {
        [RSMI_TEMP_TYPE_EDGE] = 0, [RSMI_TEMP_TYPE_JUNCTION] = 1, [RSMI_TEMP_TYPE_MEMORY] = 2};
    *temp = fake.temp_mc[slot[sensor]];
    return fake.temp_status[slot[sensor]];
}

static rsmi_status_t fake_power(uint32_t dv, uint32_t sensor, uint64_t *power)
{
    fake.last_index = dv;
    assert_int_equal(sensor, 0);
    *power = fake.power_uw;
    return fake.power_status;
}

static rsmi_status_t fake_busy(uint32_t dv, uint32_t *busy)
{
    fake.last_index = dv;
    *busy = fake.busy;
    return fake.busy_status;
}

static rsmi_status_t fake_status_string(rsmi_status_t status, const char **text)
{
    *text = status == RSMI_STATUS_INIT_ERROR ? "fake init error" : "fake error";
    return RSMI_STATUS_SUCCESS;
}

static const struct rsmi_api fake_api = {
    .init = fake_init,
    .shut_down = fake_shut_down,
    .num_monitor_devices = fake_num_devices,
    .dev_pci_id_get = fake_pci_id,
    .dev_unique_id_get = fake_unique_id,
    .dev_name_get = fake_name,
    .dev_memory_total_get = fake_mem_total,
    .dev_memory_usage_get = fake_mem_used,
    .dev_temp_metric_get = fake_temp,
    .dev_power_ave_get = fake_power,
    .dev_busy_percent_get = fake_busy,
    .status_string = fake_status_string,
};

/* ---- NVML: by default three NVIDIA GPUs, NVML's devices 0, 1, 2 on PCI
 * buses 41, 01 and 81, so the host's GPUs 0, 1, 2 (PCI order, as
 * CUDA_DEVICE_ORDER=PCI_BUS_ID counts) are NVML's 1, 0, 2 ---- */

struct nvmlDevice_st {
    unsigned index;
};

struct fake_nvml {
    nvmlReturn_t init_status;
    unsigned devices;
    unsigned bus[FAKE_DEVICES];
    const char *uuid[FAKE_DEVICES];
    int inits, shutdowns;
    nvmlReturn_t read_status; /* every reading; NVML_ERROR_GPU_IS_LOST: the GPU is gone */
    unsigned long long total, used;
    unsigned temp_c, milliwatts, util;
    unsigned last_device; /* the device of the latest reading */
};

static struct fake_nvml fnvml;
static struct nvmlDevice_st fake_nvml_devices[FAKE_DEVICES] = {{0}, {1}, {2}, {3}};

static nvmlReturn_t fnvml_init(void)
{
    fnvml.inits += fnvml.init_status == NVML_SUCCESS;
    return fnvml.init_status;
}

static nvmlReturn_t fnvml_shutdown(void)
{
    fnvml.shutdowns++;
    return NVML_SUCCESS;
}

static const char *fnvml_error_string(nvmlReturn_t rc)
{
    return rc == NVML_ERROR_DRIVER_NOT_LOADED ? "Driver Not Loaded" : "fake NVML error";
}

static nvmlReturn_t fnvml_count(unsigned *count)
{
    *count = fnvml.devices;
    return NVML_SUCCESS;
}

static nvmlReturn_t fnvml_by_index(unsigned index, nvmlDevice_t *device)
{
    if (index >= fnvml.devices)
        return NVML_ERROR_INVALID_ARGUMENT;
    *device = &fake_nvml_devices[index];
    return NVML_SUCCESS;
}

static nvmlReturn_t fnvml_by_uuid(const char *uuid, nvmlDevice_t *device)
{
    for (unsigned i = 0; i < fnvml.devices; i++) {
        if (fnvml.uuid[i] && strcmp(uuid, fnvml.uuid[i]) == 0) {
            *device = &fake_nvml_devices[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

static nvmlReturn_t fnvml_pci(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    memset(pci, 0, sizeof(*pci));
    pci->bus = fnvml.bus[device->index];
    snprintf(pci->busId, sizeof(pci->busId), "00000000:%02X:00.0", pci->bus);
    return NVML_SUCCESS;
}

static nvmlReturn_t fnvml_name(nvmlDevice_t device, char *name, unsigned length)
{
    snprintf(name, length, "NVIDIA H200 #%u", device->index);
    return NVML_SUCCESS;
}

static nvmlReturn_t fnvml_memory(nvmlDevice_t device, nvmlMemory_t *memory)
{
    fnvml.last_device = device->index;
    memory->total = fnvml.total;
    memory->used = fnvml.used;
    memory->free = fnvml.total - fnvml.used;
    return fnvml.read_status;
}

static nvmlReturn_t fnvml_temperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensor,
                                      unsigned *temp)
{
    fnvml.last_device = device->index;
    assert_int_equal(sensor, NVML_TEMPERATURE_GPU);
    *temp = fnvml.temp_c;
    return fnvml.read_status;
}

static nvmlReturn_t fnvml_power(nvmlDevice_t device, unsigned *milliwatts)
{
    fnvml.last_device = device->index;
    *milliwatts = fnvml.milliwatts;
    return fnvml.read_status;
}

static nvmlReturn_t fnvml_utilization(nvmlDevice_t device, nvmlUtilization_t *util)
{
    fnvml.last_device = device->index;
    util->gpu = fnvml.util;
    util->memory = 0;
    return fnvml.read_status;
}

static const struct nvml_api fake_nvml_api = {
    .init = fnvml_init,
    .shutdown = fnvml_shutdown,
    .error_string = fnvml_error_string,
    .device_get_count = fnvml_count,
    .device_get_handle_by_index = fnvml_by_index,
    .device_get_handle_by_uuid = fnvml_by_uuid,
    .device_get_pci_info = fnvml_pci,
    .device_get_name = fnvml_name,
    .device_get_memory_info = fnvml_memory,
    .device_get_temperature = fnvml_temperature,
    .device_get_power_usage = fnvml_power,
    .device_get_utilization_rates = fnvml_utilization,
};

/* Both fakes healthy; no GPU variables inherited. */
static int reset_fakes(void **state)
{
    (void)state;
    memset(&fake, 0, sizeof(fake));
    fake.devices = 2;
    fake.bdf[0] = gpu_bdf_pack(0, 0xc1, 0, 0);
    fake.bdf[1] = gpu_bdf_pack(0, 0x03, 0, 0);
    fake.unique_id[0] = 0x1111222233334444ull;
    fake.unique_id[1] = 0x5555666677778888ull;
    fake.vram_total = 64ull << 30;
    fake.vram_used = 3ull << 30;
    fake.temp_mc[0] = 45000;
    fake.temp_mc[1] = 51250;
    fake.temp_mc[2] = 60000;
    fake.power_uw = 123456789;
    fake.busy = 37;

    memset(&fnvml, 0, sizeof(fnvml));
    fnvml.devices = 3;
    fnvml.bus[0] = 0x41;
    fnvml.bus[1] = 0x01;
    fnvml.bus[2] = 0x81;
    fnvml.uuid[0] = "GPU-aaaaaaaa-0000-0000-0000-000000000000";
    fnvml.uuid[1] = "GPU-bbbbbbbb-0000-0000-0000-000000000000";
    fnvml.uuid[2] = "GPU-cccccccc-0000-0000-0000-000000000000";
    fnvml.total = 141ull << 30;
    fnvml.used = 5ull << 30;
    fnvml.temp_c = 38;
    fnvml.milliwatts = 98765;
    fnvml.util = 12;
    return 0;
}

/* The gpu module on the fakes with the given inherited lists. */
static struct gpu *open_fakes(const char *backend, int gpu, const struct gpu_visible *vis,
                              const struct logger *log, char *err, size_t err_len)
{
    static const struct gpu_visible none_inherited = {NULL, NULL, NULL};
    const struct gpu_libs libs = {.rsmi = &fake_api, .nvml = &fake_nvml_api};
    return gpu_open_with(backend, gpu, vis ? vis : &none_inherited, &libs, log, err, err_len);
}

/* ---- a logger whose lines land in a pipe ---- */

struct captured_log {
    struct logger log;
    int fds[2];
    char text[4096];
};

static void capture_open(struct captured_log *c)
{
    assert_int_equal(pipe2(c->fds, O_NONBLOCK | O_CLOEXEC), 0);
    logger_init(&c->log, LOG_DEBUG, false, c->fds[1]);
}

/* Everything logged since the last call, and how many lines it was. */
static int capture_read(struct captured_log *c)
{
    ssize_t n = read(c->fds[0], c->text, sizeof(c->text) - 1);
    c->text[n > 0 ? n : 0] = '\0';
    int lines = 0;
    for (const char *p = c->text; *p; p++) {
        lines += *p == '\n';
    }
    return lines;
}

static void capture_close(struct captured_log *c)
{
    close(c->fds[0]);
    close(c->fds[1]);
}

#endif
