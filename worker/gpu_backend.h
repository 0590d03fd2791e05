/* gpu_backend.h — private to the gpu module: what gpu.c, gpu_rocm.c and
 * gpu_nvml.c share (how a backend open fails, finding a card among a
 * library's devices by PCI bus id), and the seam the unit tests open the
 * module through with fake vendor libraries and a fake environment. */
#ifndef LLMQ_GPU_BACKEND_H
#define LLMQ_GPU_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpu.h"

/* Why a backend could not open. */
enum gpu_open_rc {
    GPU_OPEN_OK = 0,
    GPU_OPEN_UNUSABLE,  /* no library, no driver, no device or no such card */
    GPU_OPEN_NO_MEMORY, /* never a reason to try the next backend */
};

/* A PCI address packed as rocm-smi packs it: domain << 32 | bus << 8 |
 * device << 3 | function. */
uint64_t gpu_bdf_pack(unsigned domain, unsigned bus, unsigned device, unsigned function);

/* "0000:c1:00.0" into out (at least 20 bytes). */
void gpu_bdf_format(uint64_t bdf, char *out, size_t len);

/* True when `card` is a host index (decimal digits only); sets *index. */
bool gpu_card_index(const char *card, unsigned *index);

/* The position in `bdf` (one entry per device, `n` devices) of the host's
 * card number `index`, counting cards in PCI bus order. -1 when index >= n. */
int gpu_card_in_pci_order(const uint64_t *bdf, unsigned n, unsigned index);

struct rsmi_api;
struct nvml_api;

/* The vendor libraries gpu_open_with uses: each a table of the library's
 * functions (a test's fakes), or NULL to dlopen the real one when its
 * backend is tried (rsmi: librocm_smi64.so.1, nvml: libnvidia-ml.so.1). */
struct gpu_libs {
    const struct rsmi_api *rsmi;
    const struct nvml_api *nvml;
};

/* gpu_open with the inherited GPU lists and the libraries given, not read
 * from the process (the unit tests' seam). Same contract as gpu_open. */
struct gpu *gpu_open_with(const char *backend, int gpu, const struct gpu_visible *vis,
                          const struct gpu_libs *libs, const struct logger *log, char *err,
                          size_t err_len);

#endif
