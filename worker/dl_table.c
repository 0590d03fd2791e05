/* dl_table.c — see dl_table.h. */
#include "dl_table.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

void *dl_table_load(const char *soname, const struct dl_symbol *symbols, size_t n, void *table,
                    const char *too_old, char *err, size_t err_len)
{
    void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(err, err_len, "cannot load %s (%s)", soname, why ? why : "not found");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        void *fn = dlsym(lib, symbols[i].name);
        if (!fn) {
            snprintf(err, err_len, "%s has no %s (%s)", soname, symbols[i].name, too_old);
            dlclose(lib);
            return NULL;
        }
        /* POSIX: a dlsym result converts to the function pointer it names. */
        memcpy((char *)table + symbols[i].offset, &fn, sizeof(fn));
    }
    return lib;
}
