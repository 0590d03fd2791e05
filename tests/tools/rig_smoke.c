/* rig_smoke.c — proves the test rig with the bare libraries, no llmq code:
 *   rig_smoke kafka BOOTSTRAP TOPIC   produce one message with librdkafka,
 *                                     consume it back, compare the bytes
 *   rig_smoke llama BASE_URL          stream a /completion from llama-server
 *                                     with libcurl, print each SSE data line
 * Exit 0 on success; any failure prints why and exits 1. */
#include <curl/curl.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int fail(const char *what, const char *why)
{
    fprintf(stderr, "rig_smoke: %s: %s\n", what, why);
    return 1;
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *bootstrap, const char *group)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
    if (group) {
        rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof(err));
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
    if (!rk)
        fprintf(stderr, "rig_smoke: rd_kafka_new: %s\n", err);
    return rk;
}

static int kafka_roundtrip(const char *bootstrap, const char *topic)
{
    char payload[128], group[64];
    snprintf(payload, sizeof(payload), "llmq rig smoke %ld", (long)time(NULL));
    snprintf(group, sizeof(group), "rig-smoke-%ld", (long)time(NULL));

    rd_kafka_t *producer = client(RD_KAFKA_PRODUCER, bootstrap, NULL);
    if (!producer)
        return 1;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(payload, strlen(payload)),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err)
        return fail("produce", rd_kafka_err2str(err));
    if (rd_kafka_flush(producer, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return fail("flush", "message not acknowledged within 10 s");
    rd_kafka_destroy(producer);
    printf("produced: %s\n", payload);

    rd_kafka_t *consumer = client(RD_KAFKA_CONSUMER, bootstrap, group);
    if (!consumer)
        return 1;
    rd_kafka_poll_set_consumer(consumer);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    int found = 0;
    for (int i = 0; i < 300 && !found; i++) { /* bounded: 30 s */
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(consumer, 100);
        if (!msg)
            continue;
        if (!msg->err && msg->len == strlen(payload) &&
            memcmp(msg->payload, payload, msg->len) == 0)
            found = 1;
        rd_kafka_message_destroy(msg);
    }
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    if (!found)
        return fail("consume", "the produced message did not come back within 30 s");
    printf("consumed it back\n");
    return 0;
}

struct stream {
    size_t events;
};

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    struct stream *s = ctx;
    size_t len = size * n;
    for (size_t i = 0; i + 5 < len; i++)
        if (memcmp(data + i, "data:", 5) == 0 && (i == 0 || data[i - 1] == '\n'))
            s->events++;
    fwrite(data, 1, len, stdout);
    fflush(stdout);
    return len;
}

static int llama_stream(const char *base_url)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/completion", base_url);
    const char *body = "{\"prompt\":\"Hello\",\"n_predict\":16,\"stream\":true,\"seed\":1}";
    struct stream s = {0};
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK)
        return fail("llama", curl_easy_strerror(rc));
    if (status != 200)
        return fail("llama", "HTTP status is not 200");
    if (s.events < 2)
        return fail("llama", "fewer than 2 streamed events");
    printf("\nstreamed %zu events\n", s.events);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "kafka") == 0)
        return kafka_roundtrip(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "llama") == 0) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int rc = llama_stream(argv[2]);
        curl_global_cleanup();
        return rc;
    }
    fprintf(stderr, "usage: rig_smoke kafka BOOTSTRAP TOPIC | rig_smoke llama BASE_URL\n");
    return 2;
}
