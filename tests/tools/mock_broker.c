/* mock_broker.c — TEST AID, not a Kafka broker: librdkafka's in-process
 * mock cluster (rd_kafka_mock_cluster_new) on loopback, for machines that
 * have no Java (the GPU device check). It creates the topics named on the
 * command line, prints "bootstrap=HOST:PORT[,...]" on stdout, and serves
 * until SIGINT or SIGTERM. The worker and the llmq CLI run against it
 * unchanged. Its behaviour is librdkafka's mock (no persistence, no ACLs,
 * simplified group coordinator): the test suite's broker stays the real
 * Kafka of deploy/local/kafka.sh.
 *
 *   mock_broker [--brokers N] [--partitions N] TOPIC...
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static int usage(const char *why)
{
    fprintf(stderr,
            "mock_broker: %s\n"
            "usage: mock_broker [--brokers N] [--partitions N] TOPIC...\n"
            "A test aid: librdkafka's mock cluster on loopback, not a real broker.\n",
            why);
    return 2;
}

/* A count option's value: 1..64, or -1. */
static int count_arg(const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    return end != s && *end == '\0' && v >= 1 && v <= 64 ? (int)v : -1;
}

/* The rd_kafka_t the mock cluster lives in (any client type will do). */
static rd_kafka_t *host_client(void)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "mock_broker: rd_kafka_new: %s\n", err);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

int main(int argc, char **argv)
{
    int brokers = 1, partitions = 4, first_topic = 1;
    while (first_topic + 1 < argc && strncmp(argv[first_topic], "--", 2) == 0) {
        int *into = strcmp(argv[first_topic], "--brokers") == 0      ? &brokers
                    : strcmp(argv[first_topic], "--partitions") == 0 ? &partitions
                                                                     : NULL;
        if (!into || (*into = count_arg(argv[first_topic + 1])) < 0)
            return usage("bad option or value (counts are 1..64)");
        first_topic += 2;
    }
    if (first_topic >= argc)
        return usage("name at least one topic");

    /* Blocked before librdkafka starts its threads, so they inherit the
     * mask and the signals wait for sigwait below. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    rd_kafka_t *rk = host_client();
    rd_kafka_mock_cluster_t *mc = rk ? rd_kafka_mock_cluster_new(rk, brokers) : NULL;
    if (!mc) {
        fprintf(stderr, "mock_broker: cannot start the mock cluster\n");
        if (rk)
            rd_kafka_destroy(rk);
        return 1;
    }
    int rc = 0;
    for (int i = first_topic; i < argc && rc == 0; i++) {
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, argv[i], partitions, 1);
        if (err) {
            fprintf(stderr, "mock_broker: topic %s: %s\n", argv[i], rd_kafka_err2str(err));
            rc = 1;
        }
    }
    if (rc == 0) {
        printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(mc));
        fflush(stdout);
        fprintf(stderr,
                "mock_broker: TEST AID (librdkafka %s mock cluster), %d broker(s), %d topic(s) "
                "of %d partition(s); SIGTERM stops it\n",
                rd_kafka_version_str(), brokers, argc - first_topic, partitions);
        int sig = 0;
        sigwait(&stop, &sig);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return rc;
}
