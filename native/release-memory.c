/*
 * release-memory.node: a Node-API addon that hands memory back to the kernel, with two functions Node.js
 * has no call for.
 *
 * trim(): glibc's malloc_trim(0). glibc keeps the memory freed by closed TLS connections inside its heap
 * (only the heap's top is ever returned on its own). After a connection flood `serve` measured 137 MiB held
 * by malloc with 13 MiB in use, so its RSS never came back down; malloc_trim(0) hands the free pages back.
 *
 * pageOutCode(): madvise(MADV_PAGEOUT) over the process's read-only file mappings (the node binary's
 * code and data, shared libraries). Starting Node.js and compiling the agent touch ~40 MiB of the node
 * binary that a quiet agent never uses again; the kernel would drop those clean pages only under memory
 * pressure, so until then they count in the agent's RSS and its cgroup on every node. Paged out, they
 * are read back from the file when next used. The kernel skips pages another process also maps.
 *
 * src/plumbing/release-memory.ts loads it; both commands work without it. Node-API's ABI is stable across
 * Node.js versions, so one build serves Node 20 and 24. The few declarations it needs are written here (as
 * in js_native_api.h) so that building needs no Node.js headers.
 */
/* No _GNU_SOURCE: with it, glibc >= 2.38's headers bind sscanf to a symbol of 2.38, and the addon built on
 * Debian 13 would not load in the webhook image's Debian 12 (glibc 2.36). */
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21 /* Linux >= 5.4 */
#endif

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* an enum; 0 is napi_ok */
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);

napi_status napi_create_function(napi_env env, const char *utf8name, size_t length, napi_callback cb,
                                 void *data, napi_value *result);
napi_status napi_set_named_property(napi_env env, napi_value object, const char *utf8name, napi_value value);
napi_status napi_get_boolean(napi_env env, bool value, napi_value *result);
napi_status napi_create_double(napi_env env, double value, napi_value *result);

/* trim(): true when malloc gave memory back to the kernel. */
static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value released = NULL;
  napi_get_boolean(env, malloc_trim(0) == 1, &released);
  return released;
}

/*
 * Bytes of mappings advised, or -errno of the first madvise that failed (EINVAL: a kernel before 5.4) or
 * of opening /proc/self/maps. Writable mappings are left alone: their touched pages are private copies,
 * which only swap could take.
 */
static double page_out_code(void) {
  FILE *maps = fopen("/proc/self/maps", "re");
  if (maps == NULL) return -errno;
  double advised = 0;
  char line[4096];
  while (fgets(line, sizeof line, maps) != NULL) {
    unsigned long start, end, inode;
    char perms[5];
    if (sscanf(line, "%lx-%lx %4s %*s %*s %lu", &start, &end, perms, &inode) != 4) continue;
    if (inode == 0 || perms[1] == 'w' || perms[3] != 'p') continue;
    if (madvise((void *)start, end - start, MADV_PAGEOUT) != 0) {
      advised = -errno;
      break;
    }
    advised += (double)(end - start);
  }
  fclose(maps);
  return advised;
}

static napi_value page_out_code_fn(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result = NULL;
  napi_create_double(env, page_out_code(), &result);
  return result;
}

static void export_function(napi_env env, napi_value exports, const char *name, size_t length,
                            napi_callback cb) {
  napi_value fn;
  if (napi_create_function(env, name, length, cb, NULL, &fn) == 0)
    napi_set_named_property(env, exports, name, fn);
}

/* Node.js looks these two symbols up in an addon that does not register itself. */
__attribute__((visibility("default"))) int32_t node_api_module_get_api_version_v1(void) { return 8; }

__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  export_function(env, exports, "trim", 4, trim);
  export_function(env, exports, "pageOutCode", 11, page_out_code_fn);
  return exports;
}
