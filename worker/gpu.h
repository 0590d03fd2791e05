/* gpu.h — the worker's GPU: which card llama-server is pinned to, and that
 * card read for metrics and the VRAM admission floor (VRAM used / total,
 * temperatures, power and busy percent).
 *
 * Pinning (gpu_pin.c): llama.gpu = N counts within the GPU lists the worker
 * inherited (ROCR_VISIBLE_DEVICES, HIP_VISIBLE_DEVICES, CUDA_VISIBLE_DEVICES,
 * as Slurm or a Kubernetes device plugin set them), or the host's cards when
 * none is set; gpu_target_resolve turns N into one card per vendor stack,
 * and gpu_target_child_env into the variables llama-server is started with.
 *
 * Reading (gpu.c): a struct gpu wraps one backend behind struct gpu_ops:
 * "rocm" (rocm-smi-lib, gpu_rocm.c), "nvml" (libnvidia-ml loaded with
 * dlopen, gpu_nvml.c) or "none" (every reading says present = false). Each
 * backend finds the pinned card by PCI bus id (a host index is the N-th card
 * in PCI bus order, the order rocm-smi and nvidia-smi list) or by its UUID,
 * never by the library's own index. gpu_open("auto") tries rocm, then nvml,
 * then none, and logs one line with the choice and why; gpu_open("rocm") or
 * ("nvml") that cannot read the card is an error. A metric the card cannot
 * report reads as NAN (or vram_valid = false); it never fails the others.
 *
 * The vendor libraries are reached only through function tables in the
 * private headers gpu_rocm.h and gpu_nvml.h (tests pass fakes through
 * gpu_backend.h); no other module sees a vendor header. Not thread-safe: one
 * thread owns a struct gpu. */
#ifndef LLMQ_GPU_H
#define LLMQ_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

struct gpu_reading {
    bool present;        /* a device was read (false for the none backend) */
    char backend[8];     /* "rocm", "nvml" or "none" */
    char name[128];      /* the device's marketing name; "" if unknown */
    char pci_bus_id[20]; /* "0000:c1:00.0"; "" if unknown */
    bool vram_valid;     /* both VRAM figures below were read */
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

/* ---- pinning (gpu_pin.c) ---- */

enum {
    GPU_CARD_LEN = 96, /* a card: a host index ("3") or an id ("GPU-...", "MIG-...") */
    GPU_WHY_LEN = 224, /* how llama.gpu became that card, for the log */
    GPU_CHILD_ENV = 4, /* variables a pinned llama-server is given */
    GPU_CHILD_ENV_LEN = 128,
};

/* The GPU lists the worker inherited; NULL = the variable is unset. */
struct gpu_visible {
    const char *rocr; /* ROCR_VISIBLE_DEVICES: host cards, ROCm applies it first */
    const char *hip;  /* HIP_VISIBLE_DEVICES: indexes into what ROCR left */
    const char *cuda; /* CUDA_VISIBLE_DEVICES: host cards for CUDA; HIP reads
                         it like HIP_VISIBLE_DEVICES when that is unset */
};

/* The card llama.gpu names, once for each vendor stack. */
struct gpu_target {
    int gpu;                    /* llama.gpu; -1 = not pinned (the rest is empty) */
    char rocm[GPU_CARD_LEN];    /* for ROCm: host index in PCI order, or "GPU-<hex>" */
    char cuda[GPU_CARD_LEN];    /* for CUDA: host index in PCI order, "GPU-..." or "MIG-..." */
    char rocm_why[GPU_WHY_LEN]; /* e.g. "entry 1 of inherited ROCR_VISIBLE_DEVICES=2,3" */
    char cuda_why[GPU_WHY_LEN];
};

/* The three variables as the worker's own environment has them. */
void gpu_visible_from_environ(struct gpu_visible *out);

/* Resolve llama.gpu = `gpu` against the inherited lists: N counts within the
 * list a stack reads (ROCm: ROCR_VISIBLE_DEVICES, then HIP_VISIBLE_DEVICES or
 * else CUDA_VISIBLE_DEVICES indexing into it; CUDA: CUDA_VISIBLE_DEVICES),
 * or is the host's N-th card when the stack inherited none. Returns 0, or -1
 * with a message in err when N is past the end of an inherited list or a
 * list holds an entry that is neither an index nor a GPU-/MIG- id. */
int gpu_target_resolve(int gpu, const struct gpu_visible *vis, struct gpu_target *out, char *err,
                       size_t err_len);

/* True when `env_entry` ("NAME=value") is a variable a pinned llama-server
 * gets from gpu_target_child_env, so the inherited copy must be dropped. */
bool gpu_child_env_replaces(const char *env_entry);

/* The variables that pin llama-server to the target: ROCR_VISIBLE_DEVICES =
 * the ROCm card and HIP_VISIBLE_DEVICES=0 (HIP numbers what ROCR left from
 * 0, and reads HIP before CUDA_VISIBLE_DEVICES), CUDA_VISIBLE_DEVICES = the
 * CUDA card and CUDA_DEVICE_ORDER=PCI_BUS_ID (so CUDA counts cards in the
 * order the metrics do). `t` must be pinned (gpu >= 0). */
void gpu_target_child_env(const struct gpu_target *t, char env[GPU_CHILD_ENV][GPU_CHILD_ENV_LEN]);

/* ---- reading (gpu.c) ---- */

struct gpu;

/* Open the backend named `backend` ("auto", "rocm", "nvml" or "none") on the
 * card llama.gpu = `gpu` names in the worker's environment (-1 = no pinned
 * GPU, which means none). Logs one info line naming the backend and card in
 * use, and for "auto" why each backend before it was not used. Returns NULL
 * with a message in err when the named backend cannot read the card, the
 * name is unknown, llama.gpu does not fit the inherited GPU lists, or memory
 * runs out. */
struct gpu *gpu_open(const char *backend, int gpu, const struct logger *log, char *err,
                     size_t err_len);

/* Wrap any backend (tests feed readings through their own ops). `state` is
 * handed to ops->read and ops->close. NULL if out of memory. */
struct gpu *gpu_open_ops(const struct gpu_ops *ops, void *state);

/* Read the device now (rocm and nvml: a few driver calls, well under a
 * millisecond). `out` is always filled; returns 0, or -1 when a present
 * device answered none of the metrics (out->present stays true, every value
 * unknown). A device that stops answering, and one that answers again, is
 * logged once each (a GPU fallen off the bus, a driver reset). */
int gpu_read(struct gpu *g, struct gpu_reading *out);

const char *gpu_backend_name(const struct gpu *g); /* "rocm", "nvml", "none", ... */

/* The VRAM admission rule: true when free VRAM is known and under
 * `floor_bytes`. No floor (0), no device or unknown VRAM never block. */
bool gpu_vram_below_floor(const struct gpu_reading *r, uint64_t floor_bytes);

void gpu_close(struct gpu *g); /* NULL is fine */

#endif
