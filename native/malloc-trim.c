/*
 * malloc-trim.node: a Node-API addon with one function, trim(), which calls glibc's malloc_trim(0).
 *
 * Why: glibc keeps the memory freed by closed TLS connections inside its heap (only the heap's top is ever
 * returned on its own). After a connection flood `serve` measured 137 MiB held by malloc with 13 MiB in
 * use, so its RSS never came back down; malloc_trim(0) hands the free pages back to the kernel. Node.js
 * has no call for it, so the webhook loads this addon (src/plumbing/malloc-trim.ts) and works without it.
 *
 * Node-API's ABI is stable across Node.js versions, so one build serves Node 20 and 24. The few
 * declarations it needs are written here (as in js_native_api.h) so that building needs no Node.js headers.
 */
#include <malloc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* an enum; 0 is napi_ok */
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);

napi_status napi_create_function(napi_env env, const char *utf8name, size_t length, napi_callback cb,
                                 void *data, napi_value *result);
napi_status napi_set_named_property(napi_env env, napi_value object, const char *utf8name, napi_value value);
napi_status napi_get_boolean(napi_env env, bool value, napi_value *result);

/* trim(): true when malloc gave memory back to the kernel. */
static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value released = NULL;
  napi_get_boolean(env, malloc_trim(0) == 1, &released);
  return released;
}

/* Node.js looks these two symbols up in an addon that does not register itself. */
__attribute__((visibility("default"))) int32_t node_api_module_get_api_version_v1(void) { return 8; }

__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "trim", 4, trim, NULL, &fn) == 0)
    napi_set_named_property(env, exports, "trim", fn);
  return exports;
}
