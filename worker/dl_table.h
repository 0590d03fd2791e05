/* dl_table.h — a vendor library loaded at run time (dlopen) into a table of
 * function pointers, for the GPU backends: one binary serves machines with
 * and without each vendor's driver, and a worker loads no vendor code (nor
 * its memory: rocm-smi-lib and libstdc++ are ~3.5 MiB of resident pages)
 * until its backend is tried. */
#ifndef LLMQ_DL_TABLE_H
#define LLMQ_DL_TABLE_H

#include <stddef.h>

/* One table entry: the symbol, and where its pointer goes in the table. */
struct dl_symbol {
    const char *name;
    size_t offset;
};

/* dlopen `soname` and store each of `symbols` (n of them) at its offset in
 * `table`. Returns the handle (dlclose it when done), or NULL with a message
 * in err: the library is missing, or lacks a symbol (`too_old` then says
 * what that means, e.g. "driver too old?"). */
void *dl_table_load(const char *soname, const struct dl_symbol *symbols, size_t n, void *table,
                    const char *too_old, char *err, size_t err_len);

#endif
