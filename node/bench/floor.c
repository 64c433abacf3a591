/*
 * The physical floor of `check(key)` in bench/core.js: what any native limiter pays to be
 * called from JavaScript with a string key, and nothing else.
 *
 * `keyOnly(key)` does what ratewall's fast `check` must do before deciding anything: one
 * Node-API callback, `napi_get_cb_info`, the key read as UTF-16 into a stack buffer, a hash of
 * it (FNV-1a, cheaper than ratewall's) and one number written to a Float64Array the JavaScript
 * side then reads. `keyAndClock(key)` adds a read of the time-stamp counter, the cheapest
 * precise clock there is (ratewall's default clock reads it too, then scales it to
 * CLOCK_MONOTONIC). Neither decides anything: ratewall's time above `keyAndClock` is its
 * decision (the key's slot, the algorithm, the decision's fields) and its clock's scaling.
 *
 * Built by bench/core.js with the C compiler and the headers next to the running `node`; not
 * part of the package.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <x86intrin.h>

static double *out;

static uint64_t read_key(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  void *data;
  uint16_t units[256];
  size_t len = 0;
  uint64_t hash = 1469598103934665603ull;
  napi_get_cb_info(env, info, &argc, argv, NULL, &data);
  napi_get_value_string_utf16(env, argv[0], (char16_t *)units, 256, &len);
  for (size_t i = 0; i < len; i++) hash = (hash ^ units[i]) * 1099511628211ull;
  return hash;
}

static napi_value key_only(napi_env env, napi_callback_info info) {
  out[0] = (double)(read_key(env, info) & 1023);
  return NULL;
}

static napi_value key_and_clock(napi_env env, napi_callback_info info) {
  uint64_t hash = read_key(env, info);
  out[0] = (double)((hash ^ __rdtsc()) & 1023);
  return NULL;
}

/* bind(out: Float64Array): where the functions write; the array is kept alive. */
static napi_value bind(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_typedarray_type type;
  size_t length;
  void *buffer;
  napi_ref keep;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &buffer, NULL, NULL) != napi_ok ||
      type != napi_float64_array || length < 1) {
    napi_throw_type_error(env, NULL, "bind(out) needs a Float64Array");
    return NULL;
  }
  napi_create_reference(env, argv[0], 1, &keep);
  out = buffer;
  return NULL;
}

static void export_function(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

static napi_value init(napi_env env, napi_value exports) {
  export_function(env, exports, "keyOnly", key_only);
  export_function(env, exports, "keyAndClock", key_and_clock);
  export_function(env, exports, "bind", bind);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
