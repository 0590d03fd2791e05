/* hostport.c — split listen addresses into host and port. */
#include "hostport.h"

#include <stdlib.h>
#include <string.h>

int hostport_split(const char *s, char *host, size_t host_len, char *port, size_t port_len)
{
    const char *colon = strrchr(s, ':');
    if (!colon)
        return -1;
    const char *h = s;
    size_t h_len = (size_t)(colon - s);
    if (h_len >= 2 && h[0] == '[' && h[h_len - 1] == ']') {
        h++;
        h_len -= 2;
    }
    const char *p = colon + 1;
    size_t p_len = strlen(p);
    if (h_len == 0 || h_len >= host_len || p_len == 0 || p_len > 5 || p_len >= port_len ||
        strspn(p, "0123456789") != p_len || strtol(p, NULL, 10) > 65535)
        return -1;
    memcpy(host, h, h_len);
    host[h_len] = '\0';
    memcpy(port, p, p_len + 1);
    return 0;
}
