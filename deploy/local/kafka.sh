#!/usr/bin/env bash
# kafka.sh — a single-node Apache Kafka broker (KRaft) on loopback for tests and the local stack.
#   kafka.sh fetch                       collect the pinned broker jars from Maven Central (cached)
#   kafka.sh start                       format the log dir once, start the broker, wait until it answers
#   kafka.sh stop                        SIGTERM, bounded wait, SIGKILL if needed
#   kafka.sh status                      exit 0 when the broker runs and answers metadata,
#                                        1 when it runs but does not answer, 3 when it is not running
#   kafka.sh wait                        wait (bounded) until the broker answers metadata
#   kafka.sh create-topic NAME PARTITIONS  idempotent: an existing topic with that count is success
#   kafka.sh topics                      list the topics
#   kafka.sh sasl-info                   print the secured listener's address, CA file and client
#                                        properties file (librdkafka names) as NAME=VALUE lines
# Jars live in $LLMQ_CACHE/kafka-$KAFKA_VERSION/libs; data, config, pid and log in $LLMQ_STATE/kafka.
# LLMQ_KAFKA_WAIT_S bounds the start/wait time (default 300: a broker loads every partition
# it keeps before it answers, ~55 s at 19,500 of them on a 2-core machine).
# Quick start: the broker's application classes are kept in a CDS archive ($LLMQ_STATE/kafka/
# kafka.jsa, written when the first broker of a jar set and JVM stops through kafka.sh stop,
# used by every later start: about half the boot CPU); "answers" is one Kafka Metadata request
# from bash, not a JVM.
# LLMQ_KAFKA_SASL=1: start adds a SASL_SSL listener (SCRAM-SHA-512 over TLS) on
# 127.0.0.1:$LLMQ_KAFKA_SASL_PORT (default 19094) and the StandardAuthorizer. The plain
# listener behaves as before: its principal (ANONYMOUS) is a super user, and a topic or
# group without ACLs is open to every user, so only ACLs a test adds restrict a SASL user.
# A CA and a broker certificate (IP 127.0.0.1, DNS localhost) are made with openssl into
# $LLMQ_STATE/kafka/tls; the SCRAM user "llmq" gets a random password, kept (mode 0600)
# in the client properties file that sasl-info names.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

POM="$HERE/kafka-pom.xml"
KAFKA_HOME="$LLMQ_CACHE/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
STATE="$LLMQ_STATE/kafka"
DATA="$STATE/data"
PROPS="$STATE/server.properties"
TOOLS_PROPS="$STATE/tools.properties"
LOG4J="$STATE/log4j.properties"
TOOLS_LOG4J="$STATE/tools-log4j.properties"
PIDFILE="$STATE/kafka.pid"
LOGFILE="$STATE/kafka.log"
CLUSTER_ID_FILE="$STATE/cluster.id"
BOOTSTRAP="127.0.0.1:$LLMQ_KAFKA_PORT"
WAIT_S=${LLMQ_KAFKA_WAIT_S:-300}
STOP_WAIT_S=30
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
SASL=${LLMQ_KAFKA_SASL:-0}
SASL_BOOTSTRAP="127.0.0.1:$LLMQ_KAFKA_SASL_PORT"
TLS="$STATE/tls"
CA="$TLS/ca.pem"
KEYSTORE="$TLS/broker.p12"
KEYSTORE_PASS="$TLS/broker.p12.password"
SASL_USER=llmq
CLIENT_PROPS="$STATE/client-sasl.properties"
SCRAM_STAMP="$STATE/scram.stamp"
CDS_ARCHIVE="$STATE/kafka.jsa"

mkdir -p "$STATE"

now_ms() { date +%s%3N; }
# took START_MS -> "1.23 s"
took() { local d=$(($(now_ms) - $1)); printf '%d.%02d s' $((d / 1000)) $((d % 1000 / 10)); }

need_java() {
  command -v "$JAVA" >/dev/null || die "java not found (Kafka $KAFKA_VERSION needs Java 11+; apt-get install openjdk-17-jre-headless)"
}

# The stamp names the version and the pom's hash, so a changed pom collects the jars again.
libs_stamp() { printf '%s %s\n' "$KAFKA_VERSION" "$(sha256sum <"$POM" | cut -d' ' -f1)"; }

fetch() {
  local t0; t0=$(now_ms)
  if [ -f "$LIBS/.stamp" ] && [ "$(cat "$LIBS/.stamp")" = "$(libs_stamp)" ]; then
    log "kafka fetch: $KAFKA_VERSION jars cached in $LIBS ($(took "$t0"))"
    return 0
  fi
  command -v mvn >/dev/null || die "mvn is needed to fetch the Kafka jars (apt-get install maven)"
  need_java
  log "kafka fetch: collecting kafka_$SCALA_VERSION:$KAFKA_VERSION and its runtime dependencies"
  rm -rf "$LIBS.tmp"
  mkdir -p "$KAFKA_HOME"
  if ! mvn -q -B -f "$POM" -Dmaven.repo.local="$LLMQ_CACHE/m2" \
      -Dkafka.version="$KAFKA_VERSION" -Dscala.binary.version="$SCALA_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" \
      >"$KAFKA_HOME/fetch.log" 2>&1; then
    tail -30 "$KAFKA_HOME/fetch.log" >&2
    die "mvn could not collect the Kafka jars (log: $KAFKA_HOME/fetch.log)"
  fi
  [ -f "$LIBS.tmp/kafka_$SCALA_VERSION-$KAFKA_VERSION.jar" ] || die "mvn finished but kafka_$SCALA_VERSION-$KAFKA_VERSION.jar is missing"
  libs_stamp >"$LIBS.tmp/.stamp"
  rm -rf "$LIBS" && mv "$LIBS.tmp" "$LIBS"
  log "kafka fetch: $(find "$LIBS" -name '*.jar' | wc -l) jars in $LIBS ($(took "$t0"))"
}

# A random secret, URL-safe base64 (nothing to quote in a properties or libconfig file).
random_secret() { head -c 18 /dev/urandom | base64 | tr '+/' '-_'; }

# The listener lines: plain and controller, and with SASL=1 the secured listener with its
# TLS keystore and SCRAM, and the authorizer (see the header).
listener_config() {
  local plain="PLAINTEXT://127.0.0.1:$LLMQ_KAFKA_PORT" ctl="CONTROLLER://127.0.0.1:$LLMQ_KAFKA_CONTROLLER_PORT"
  if [ "$SASL" != 1 ]; then
    printf '%s\n' "listeners=$plain,$ctl" "advertised.listeners=$plain" \
      "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    return 0
  fi
  printf '%s\n' "listeners=$plain,$ctl,SASL_SSL://$SASL_BOOTSTRAP" \
    "advertised.listeners=$plain,SASL_SSL://$SASL_BOOTSTRAP" \
    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL" \
    "sasl.enabled.mechanisms=SCRAM-SHA-512" \
    "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;" \
    "listener.name.sasl_ssl.ssl.keystore.type=PKCS12" \
    "listener.name.sasl_ssl.ssl.keystore.location=$KEYSTORE" \
    "listener.name.sasl_ssl.ssl.keystore.password=$(cat "$KEYSTORE_PASS")" \
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" \
    "super.users=User:ANONYMOUS" \
    "allow.everyone.if.no.acl.found=true"
}

# The CA and the broker's certificate (EC P-256: quick to make), made again when missing
# or within a day of expiry. The keystore password is random, kept beside it (0600).
make_tls() {
  local t0
  [ -s "$KEYSTORE" ] && [ -s "$KEYSTORE_PASS" ] &&
    openssl x509 -checkend 86400 -noout -in "$CA" >/dev/null 2>&1 &&
    openssl x509 -checkend 86400 -noout -in "$TLS/broker.pem" >/dev/null 2>&1 && return 0
  command -v openssl >/dev/null || die "openssl is needed for the SASL_SSL listener (apt-get install openssl)"
  t0=$(now_ms)
  rm -rf "$TLS.tmp" && mkdir -p "$TLS.tmp" && chmod 700 "$TLS.tmp"
  printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "extendedKeyUsage=serverAuth" >"$TLS.tmp/san.ext"
  (umask 077 && random_secret >"$TLS.tmp/broker.p12.password")
  if ! (
    cd "$TLS.tmp" &&
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=llmq local test CA" -keyout ca.key -out ca.pem &&
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=127.0.0.1" -keyout broker.key -out broker.csr &&
      openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
        -extfile san.ext -out broker.pem &&
      openssl pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem -name broker \
        -passout file:broker.p12.password -out broker.p12
  ) >"$STATE/tls.log" 2>&1; then
    cat "$STATE/tls.log" >&2
    die "could not make the TLS certificates (log: $STATE/tls.log)"
  fi
  rm -rf "$TLS" && mv "$TLS.tmp" "$TLS"
  log "kafka: made a CA and the broker certificate in $TLS ($(took "$t0"))"
}

# The client properties (librdkafka names) of user llmq; its password is drawn once.
write_client_props() {
  local password
  password=$(sed -n 's/^sasl\.password=//p' "$CLIENT_PROPS" 2>/dev/null || true)
  [ -n "$password" ] || password=$(random_secret)
  (umask 077 && printf '%s\n' \
    "# Written by deploy/local/kafka.sh: a client of the SASL_SSL listener (librdkafka names)." \
    "bootstrap.servers=$SASL_BOOTSTRAP" "security.protocol=SASL_SSL" \
    "sasl.mechanisms=SCRAM-SHA-512" "sasl.username=$SASL_USER" "sasl.password=$password" \
    "ssl.ca.location=$CA" >"$CLIENT_PROPS.tmp")
  mv -f "$CLIENT_PROPS.tmp" "$CLIENT_PROPS"
}

# Give user llmq its SCRAM credential through the plain listener, once per formatted log
# dir and password (the stamp); the password goes through a file, never a command line.
ensure_scram_user() {
  local t0 stamp cfg="$STATE/scram.add.properties"
  stamp="$(cat "$CLUSTER_ID_FILE") $(sha256sum <"$CLIENT_PROPS" | cut -d' ' -f1)"
  [ -f "$SCRAM_STAMP" ] && [ "$(cat "$SCRAM_STAMP")" = "$stamp" ] && return 0
  t0=$(now_ms)
  (umask 077 && printf 'SCRAM-SHA-512=iterations=4096,password=%s\n' \
    "$(sed -n 's/^sasl\.password=//p' "$CLIENT_PROPS")" >"$cfg")
  if ! kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$BOOTSTRAP" \
    --command-config "$TOOLS_PROPS" --alter --entity-type users --entity-name "$SASL_USER" \
    --add-config-file "$cfg" >"$STATE/scram.log" 2>&1; then
    rm -f "$cfg"
    cat "$STATE/scram.log" >&2
    die "could not set the SCRAM credential of user $SASL_USER (log: $STATE/scram.log)"
  fi
  rm -f "$cfg"
  echo "$stamp" >"$SCRAM_STAMP"
  log "kafka: SCRAM-SHA-512 credential of user $SASL_USER set ($(took "$t0"))"
}

# With SASL=1: the running broker has the secured listener and its SCRAM user. A broker
# started without it is left alone (others may use it), with a line saying how to add it.
sasl_ready() {
  [ "$SASL" = 1 ] || return 0
  if ! grep -q '^listeners=.*SASL_SSL://' "$PROPS" || ! port_open "$LLMQ_KAFKA_SASL_PORT"; then
    log "kafka: the running broker has no SASL_SSL listener on $SASL_BOOTSTRAP; to add it:" \
      "kafka.sh stop && LLMQ_KAFKA_SASL=1 kafka.sh start"
    return 0
  fi
  ensure_scram_user
  log "kafka: SASL_SSL listener on $SASL_BOOTSTRAP (CA $CA, client properties $CLIENT_PROPS)"
}

sasl_info() {
  printf '%s\n' "sasl_bootstrap=$SASL_BOOTSTRAP" "ca=$CA" "client_properties=$CLIENT_PROPS"
}

write_config() {
  (umask 077 && : >"$PROPS") && chmod 600 "$PROPS" # the keystore password
  cat >"$PROPS" <<EOF
# Written by deploy/local/kafka.sh on every start; edits here are lost.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$LLMQ_KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
$(listener_config)
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
# After a crash the controller keeps the dead incarnation registered until its session
# ends; a short session lets a restarted broker register within seconds (default 9 s).
broker.heartbeat.interval.ms=750
broker.session.timeout.ms=3000
# A test rig on two cores: few threads, small segments, short retention.
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
log.segment.bytes=16777216
log.retention.hours=24
log.retention.check.interval.ms=60000
log.cleaner.dedupe.buffer.size=16777216
log.cleaner.threads=1
EOF
  # The broker logs to stdout, which start() sends to kafka.log.
  cat >"$LOG4J" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
EOF
  cat >"$TOOLS_LOG4J" <<'EOF'
log4j.rootLogger=ERROR, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
  # Short client timeouts so a probe of a broker that is not up fails fast.
  cat >"$TOOLS_PROPS" <<'EOF'
request.timeout.ms=3000
default.api.timeout.ms=5000
EOF
}

# The JVM flags of the broker's class-data-sharing archive: use it when it was written by this
# JVM for this jar set (its stamp), else have the broker write a new one (.new) when it exits;
# stop() keeps that one only after a clean exit. A JVM that cannot map an archive runs without
# it (-Xshare:auto); -Xlog:cds*=off keeps CDS's notes out of kafka.log.
cds_flags() {
  local stamp
  stamp="$(libs_stamp) $(readlink -f "$(command -v "$JAVA")")"
  if [ -s "$CDS_ARCHIVE" ] && [ "$(cat "$CDS_ARCHIVE.stamp" 2>/dev/null)" = "$stamp" ]; then
    printf '%s\n' "-XX:SharedArchiveFile=$CDS_ARCHIVE" "-Xlog:cds*=off"
    return 0
  fi
  rm -f "$CDS_ARCHIVE.new"
  echo "$stamp" >"$CDS_ARCHIVE.new.stamp"
  printf '%s\n' "-XX:ArchiveClassesAtExit=$CDS_ARCHIVE.new" "-Xlog:cds*=off"
}

# After the broker stopped: keep the archive it wrote when it exited cleanly (clean=1).
cds_settle() {
  [ -e "$CDS_ARCHIVE.new" ] || return 0
  if [ "$1" = 1 ] && [ -s "$CDS_ARCHIVE.new" ]; then
    mv -f "$CDS_ARCHIVE.new.stamp" "$CDS_ARCHIVE.stamp"
    mv -f "$CDS_ARCHIVE.new" "$CDS_ARCHIVE"
    log "kafka: class-data archive $CDS_ARCHIVE written: later starts are quicker"
  else
    rm -f "$CDS_ARCHIVE.new" "$CDS_ARCHIVE.new.stamp"
  fi
}

# A Kafka tool (TopicCommand, StorageTool) in a small, quickly started JVM.
kafka_tool() {
  "$JAVA" -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$TOOLS_LOG4J" -cp "$LIBS/*" "$@"
}

topic_cmd() {
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
    --command-config "$TOOLS_PROPS" "$@"
}

# The pid of our broker, or nothing: the pid file must name a live kafka.Kafka
# process started with our server.properties (a pid reused after a reboot is not ours).
broker_pid() {
  local pid
  [ -f "$PIDFILE" ] || return 0
  pid=$(cat "$PIDFILE" 2>/dev/null || true)
  case "$pid" in '' | *[!0-9]*) return 0 ;; esac
  [ -r "/proc/$pid/cmdline" ] || return 0
  if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $PROPS"; then echo "$pid"; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Whether the broker answers a Kafka Metadata request (v4, all topics) on the plain port with
# at least one broker: the reply's correlation id is ours and its broker count is not 0.
answers() {
  local reply
  # shellcheck disable=SC2016 # $1 belongs to the inner shell
  reply=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "\x00\x00\x00\x13\x00\x03\x00\x04\x00\x00\x00\x01\x00\x04llmq\xff\xff\xff\xff\x00" >&3
    head -c 16 <&3 | od -An -tx1 -v' _ "$LLMQ_KAFKA_PORT" 2>/dev/null | tr -d ' \n')
  [ "${#reply}" -eq 32 ] && [ "${reply:8:8}" = 00000001 ] && [ "${reply:24:8}" != 00000000 ]
}

show_log_tail() {
  [ -f "$LOGFILE" ] || return 0
  printf '%s\n' "--- last lines of $LOGFILE ---" >&2
  tail -25 "$LOGFILE" >&2
}

# How far the broker's log loading is: its log's last "(N/M completed in DIR)" (one per
# partition loaded) or "Loaded M logs" (all loaded; then it replays its metadata).
loaded_logs() {
  local line
  line=$(grep -o '[0-9]*/[0-9]* completed in\|Loaded [0-9]* logs' "$LOGFILE" 2>/dev/null | tail -1)
  case "$line" in
    '') echo "its log: $LOGFILE" ;;
    Loaded*) echo "${line#Loaded } loaded, replaying its metadata" ;;
    *) echo "logs loaded: ${line% completed in}" ;;
  esac
}

# Wait until the broker answers a metadata request; fail early if the process dies.
wait_ready() {
  local t0 deadline pid next_progress=$((SECONDS + 30))
  t0=$(now_ms)
  deadline=$((SECONDS + WAIT_S))
  while [ "$SECONDS" -lt "$deadline" ]; do
    pid=$(broker_pid)
    if [ -z "$pid" ]; then
      show_log_tail
      die "kafka broker is not running (pid file: $PIDFILE)"
    fi
    if answers; then
      log "kafka: broker pid $pid answers on $BOOTSTRAP ($(took "$t0"))"
      return 0
    fi
    if [ "$SECONDS" -ge "$next_progress" ]; then
      next_progress=$((SECONDS + 30))
      log "kafka: broker pid $pid still starting ($(took "$t0")); $(loaded_logs)"
    fi
    sleep 0.1
  done
  show_log_tail
  die "kafka broker pid $pid did not answer on $BOOTSTRAP within ${WAIT_S} s (it still runs: kafka.sh wait, or kafka.sh stop)"
}

# Format the log dir the first time; the cluster id is kept so a wiped data dir keeps it.
format_storage() {
  local t0 cid
  [ -f "$DATA/meta.properties" ] && return 0
  t0=$(now_ms)
  rm -f "$SCRAM_STAMP" # a new log dir has no SCRAM users yet
  if [ ! -s "$CLUSTER_ID_FILE" ]; then
    # A Kafka Uuid: 16 random bytes, URL-safe base64 without padding; one that starts
    # with '-' would read as an option, so draw again.
    cid=-
    while [ "${cid#-}" != "$cid" ]; do
      cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    done
    echo "$cid" >"$CLUSTER_ID_FILE"
  fi
  cid=$(cat "$CLUSTER_ID_FILE")
  mkdir -p "$DATA"
  kafka_tool kafka.tools.StorageTool format --ignore-formatted -t "$cid" -c "$PROPS" \
    >"$STATE/format.log" 2>&1 || { cat "$STATE/format.log" >&2; die "kafka storage format failed"; }
  log "kafka: formatted $DATA with cluster id $cid ($(took "$t0"))"
}

# fetch, start and stop run one at a time (parallel test runs share the broker).
with_lock() {
  exec 9>"$STATE/lock"
  flock -w 300 9 || die "another kafka.sh holds $STATE/lock"
}

start() {
  local t0 pid
  t0=$(now_ms)
  fetch
  pid=$(broker_pid)
  if [ -n "$pid" ]; then
    log "kafka: broker already running (pid $pid)"
    wait_ready
    sasl_ready
    return 0
  fi
  if [ -f "$PIDFILE" ]; then
    log "kafka: removing stale pid file ($(cat "$PIDFILE" 2>/dev/null || true) is not a running broker)"
    rm -f "$PIDFILE"
  fi
  local port
  local ports=("$LLMQ_KAFKA_PORT" "$LLMQ_KAFKA_CONTROLLER_PORT")
  [ "$SASL" = 1 ] && ports+=("$LLMQ_KAFKA_SASL_PORT")
  for port in "${ports[@]}"; do
    port_open "$port" && die "port 127.0.0.1:$port is in use by another process (set LLMQ_KAFKA_PORT / LLMQ_KAFKA_CONTROLLER_PORT / LLMQ_KAFKA_SASL_PORT)"
  done
  need_java
  if [ "$SASL" = 1 ]; then
    make_tls
    write_client_props
  fi
  write_config
  format_storage
  [ -f "$LOGFILE" ] && mv -f "$LOGFILE" "$LOGFILE.1"
  local cds
  mapfile -t cds < <(cds_flags)
  # setsid: the broker outlives this shell and its terminal; the inner shell writes
  # its own pid before exec so the pid file names the JVM. fd 9 (the lock) stays here.
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PIDFILE" \
    "$JAVA" -Xms128m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "${cds[@]}" \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$LOG4J" -cp "$LIBS/*" kafka.Kafka "$PROPS" \
    </dev/null >"$LOGFILE" 2>&1 9>&- &
  for _ in $(seq 1 50); do
    [ -s "$PIDFILE" ] && break
    sleep 0.1
  done
  log "kafka: started broker pid $(cat "$PIDFILE" 2>/dev/null || echo '?') (log: $LOGFILE)"
  wait_ready
  sasl_ready
  log "kafka start: done ($(took "$t0"))"
}

stop() {
  local t0 pid deadline
  t0=$(now_ms)
  pid=$(broker_pid)
  if [ -z "$pid" ]; then
    rm -f "$PIDFILE"
    log "kafka stop: not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_WAIT_S))
  while [ -e "/proc/$pid" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  local clean=1
  if [ -e "/proc/$pid" ]; then
    log "kafka stop: pid $pid ignored SIGTERM for ${STOP_WAIT_S} s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while [ -e "/proc/$pid" ]; do sleep 0.1; done
    clean=0
  fi
  rm -f "$PIDFILE"
  cds_settle "$clean"
  log "kafka stop: broker pid $pid stopped ($(took "$t0"))"
}

status() {
  local pid
  pid=$(broker_pid)
  if [ -z "$pid" ]; then
    echo "kafka: not running"
    return 3
  fi
  if answers; then
    echo "kafka: running, pid $pid, $BOOTSTRAP"
    return 0
  fi
  echo "kafka: pid $pid runs but does not answer on $BOOTSTRAP"
  return 1
}

create_topic() {
  local name=${1:-} parts=${2:-} t0 have
  [ -n "$name" ] || die "usage: $0 create-topic NAME PARTITIONS"
  case "$parts" in '' | *[!0-9]* | 0) die "PARTITIONS must be a positive integer, got '$parts'" ;; esac
  t0=$(now_ms)
  topic_cmd --create --if-not-exists --topic "$name" --partitions "$parts" \
    --replication-factor 1 >/dev/null || die "could not create topic $name"
  have=$(topic_cmd --describe --topic "$name" | sed -n 's/.*PartitionCount: *\([0-9][0-9]*\).*/\1/p' | head -1)
  [ -n "$have" ] || die "topic $name was not found after create"
  [ "$have" = "$parts" ] || die "topic $name exists with $have partitions, not $parts (delete it or use another name)"
  log "kafka: topic $name has $parts partitions ($(took "$t0"))"
}

case "${1:-}" in
  fetch) with_lock; fetch ;;
  start) with_lock; start ;;
  stop) with_lock; stop ;;
  status) status ;;
  wait) wait_ready ;;
  create-topic) shift; create_topic "$@" ;;
  topics) topic_cmd --list ;;
  sasl-info) sasl_info ;;
  *) die "usage: $0 {fetch|start|stop|status|wait|create-topic NAME PARTITIONS|topics|sasl-info}" ;;
esac
