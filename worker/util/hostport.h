/* hostport.h — "host:port" and "[v6 address]:port" split into their parts:
 * the listen addresses of the config and the metrics endpoint. */
#ifndef LLMQ_UTIL_HOSTPORT_H
#define LLMQ_UTIL_HOSTPORT_H

#include <stddef.h>

/* Split s at its last ':' into host (brackets of a v6 address removed) and
 * port (1..5 digits, at most 65535), each NUL-terminated. Returns 0, or -1
 * when s has no ':', the host is empty, the port is not such a number, or
 * a part does not fit its buffer. */
int hostport_split(const char *s, char *host, size_t host_len, char *port, size_t port_len);

#endif
