/* heartbeat.c — the heartbeat map, byte-compatible with schemas/vectors. */
#include "heartbeat.h"

#include <math.h>
#include <string.h>

#include "gpu.h"

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t len = strlen(s);
    return msgpack_pack_str(pk, len) || msgpack_pack_str_body(pk, s, len);
}

static int pack_key(msgpack_packer *pk, const char *key)
{
    return pack_str(pk, key);
}

/* A measured value, or nil when the backend could not give it. */
static int pack_real_or_nil(msgpack_packer *pk, double value)
{
    return isnan(value) ? msgpack_pack_nil(pk) : msgpack_pack_double(pk, value);
}

static int pack_gpu(msgpack_packer *pk, const struct gpu_reading *g)
{
    int rc = msgpack_pack_map(pk, 9);
    rc |= pack_key(pk, "backend") || pack_str(pk, g->backend);
    rc |= pack_key(pk, "name") || (g->name[0] ? pack_str(pk, g->name) : msgpack_pack_nil(pk));
    rc |= pack_key(pk, "vram_total_bytes") ||
          (g->vram_valid ? msgpack_pack_uint64(pk, g->vram_total_bytes) : msgpack_pack_nil(pk));
    rc |= pack_key(pk, "vram_used_bytes") ||
          (g->vram_valid ? msgpack_pack_uint64(pk, g->vram_used_bytes) : msgpack_pack_nil(pk));
    rc |= pack_key(pk, "temp_edge_c") || pack_real_or_nil(pk, g->temp_edge_c);
    rc |= pack_key(pk, "temp_junction_c") || pack_real_or_nil(pk, g->temp_junction_c);
    rc |= pack_key(pk, "temp_mem_c") || pack_real_or_nil(pk, g->temp_mem_c);
    rc |= pack_key(pk, "power_w") || pack_real_or_nil(pk, g->power_w);
    rc |= pack_key(pk, "busy_percent") || pack_real_or_nil(pk, g->busy_percent);
    return rc;
}

int heartbeat_encode(msgpack_sbuffer *out, const struct heartbeat *hb)
{
    size_t start = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, 11);
    rc |= pack_key(&pk, "v") || msgpack_pack_int(&pk, 1);
    rc |= pack_key(&pk, "type") || pack_str(&pk, "heartbeat");
    rc |= pack_key(&pk, "worker") || pack_str(&pk, hb->worker);
    rc |= pack_key(&pk, "host") || pack_str(&pk, hb->host);
    rc |= pack_key(&pk, "model") || pack_str(&pk, hb->model);
    rc |= pack_key(&pk, "state") || pack_str(&pk, hb->state);
    rc |= pack_key(&pk, "ts_ms") || msgpack_pack_int64(&pk, hb->ts_ms);
    rc |= pack_key(&pk, "gpu") || pack_gpu(&pk, hb->gpu);
    rc |= pack_key(&pk, "slots_busy") || msgpack_pack_unsigned_int(&pk, hb->slots_busy);
    rc |= pack_key(&pk, "slots_total") || msgpack_pack_unsigned_int(&pk, hb->slots_total);
    rc |= pack_key(&pk, "counters") || msgpack_pack_map(&pk, 3);
    rc |= pack_key(&pk, "jobs_done") || msgpack_pack_uint64(&pk, hb->jobs_done);
    rc |= pack_key(&pk, "jobs_failed") || msgpack_pack_uint64(&pk, hb->jobs_failed);
    rc |= pack_key(&pk, "tokens") || msgpack_pack_uint64(&pk, hb->tokens);
    if (rc) {
        out->size = start;
        return -1;
    }
    return 0;
}
