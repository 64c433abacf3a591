// Direct V8 callbacks for the key-only hot path (`checkKey`, `peekKey`, `refundKey`).
//
// Why: a Node-API callback pays Node's wrapper around it (`FunctionCallbackWrapper::Invoke`,
// `napi_get_cb_info`, `External::Value`, the wrapper of `napi_get_value_string_utf16`): 8-10 ns
// of a 60 ns `check(key)` on the machine ratewall is measured on. A V8 `FunctionCallback`
// reads its argument and its data inline. See `direct.rs` for when this file is compiled and
// used; everything here is called from there.
//
// Compiled only against the headers of the Node that builds the addon, and used only when the
// running Node is that same version (`ratewall_direct_node_version`): V8's C++ API has no
// stable ABI. Every V8 symbol this file references is made weak after compiling (build.rs), so
// a host that does not export V8's API still loads the addon, and `ratewall_direct_ready`
// then says no.
//
// A direct function never throws and never changes anything it cannot finish: it returns
// `false` for anything but the common case (a key that is not a string or is longer than its
// stack buffer, a check that fails), and the JavaScript glue then calls the Node-API function,
// which handles or reports it.

#include <dlfcn.h>
#include <node_version.h>
#include <string.h>
#include <v8.h>

#include <cstdint>
#include <cstdio>

#include "node_api.h"

extern "C" {
// Implemented in direct.rs: the operation bound to `bound` on `len` UTF-16 code units of key,
// with cost 1 and the limiter's clock; writes the decision and returns true, or changes
// nothing and returns false.
bool ratewall_direct_key_op(const void* bound, const uint16_t* units, size_t len);
}

namespace {

// Keys of up to this many UTF-16 code units are handled here; longer ones (a possibly
// truncated read) go to the Node-API function. The same bound as fast.rs's stack buffer.
constexpr int kStackKey = 256;

// Internal fields of a direct function's data object.
constexpr int kBoundField = 0;     // the `Bound` (aligned pointer)
constexpr int kOwnerField = 1;     // the Node-API function that owns the `Bound`
constexpr int kFieldCount = 2;

void Call(const v8::FunctionCallbackInfo<v8::Value>& info) {
  void* bound = info.Data().As<v8::Object>()->GetAlignedPointerFromInternalField(kBoundField);
  if (info.Length() < 1 || !info[0]->IsString()) {
    info.GetReturnValue().Set(false);
    return;
  }
  uint16_t units[kStackKey];
  int len = info[0].As<v8::String>()->Write(info.GetIsolate(), units, 0, kStackKey,
                                            v8::String::NO_NULL_TERMINATION);
  if (len >= kStackKey - 1 || !ratewall_direct_key_op(bound, units, static_cast<size_t>(len))) {
    info.GetReturnValue().Set(false);
  }
}

// Node-API's `napi_value` is a `v8::Local<v8::Value>`'s slot, reinterpreted (Node's
// `v8impl::V8LocalValueFromJsValue`). Only used when the running Node is the one compiled
// against.
v8::Local<v8::Value> FromNapi(napi_value value) {
  v8::Local<v8::Value> local;
  static_assert(sizeof(local) == sizeof(value), "a Local is one pointer");
  memcpy(static_cast<void*>(&local), &value, sizeof(value));
  return local;
}

napi_value ToNapi(v8::Local<v8::Value> local) {
  napi_value value;
  memcpy(&value, static_cast<void*>(&local), sizeof(value));
  return value;
}

}  // namespace

extern "C" {

// The Node version this file was compiled against, as `process.version` spells it.
const char* ratewall_direct_node_version() {
  return "v" NODE_STRINGIFY(NODE_MAJOR_VERSION) "." NODE_STRINGIFY(
      NODE_MINOR_VERSION) "." NODE_STRINGIFY(NODE_PATCH_VERSION);
}

// Whether the host exports V8's API and runs the V8 this file was compiled against.
bool ratewall_direct_ready() {
  using GetVersion = const char* (*)();
  // v8::V8::GetVersion(): looked up rather than called, since its symbol is weak.
  auto get_version =
      reinterpret_cast<GetVersion>(dlsym(RTLD_DEFAULT, "_ZN2v82V810GetVersionEv"));
  if (get_version == nullptr) return false;
  // The running V8 says "major.minor.build.patch" and maybe an embedder's suffix ("-node.33").
  char compiled[64];
  int n = snprintf(compiled, sizeof compiled, "%d.%d.%d.%d", V8_MAJOR_VERSION, V8_MINOR_VERSION,
                   V8_BUILD_NUMBER, V8_PATCH_LEVEL);
  const char* running = get_version();
  if (n <= 0 || strncmp(running, compiled, static_cast<size_t>(n)) != 0) return false;
  return running[n] == '\0' || running[n] == '-';
}

// Creates the direct twin of Node-API function `owner`, bound to `bound` (owned by `owner`,
// which the twin keeps alive). Call only from a JavaScript thread inside a callback, after
// `ratewall_direct_ready` said yes. Returns NULL if V8 could not create it.
napi_value ratewall_direct_function(napi_value owner, const void* bound) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  v8::Local<v8::ObjectTemplate> shape = v8::ObjectTemplate::New(isolate);
  shape->SetInternalFieldCount(kFieldCount);
  v8::Local<v8::Object> data;
  if (!shape->NewInstance(context).ToLocal(&data)) return nullptr;
  data->SetAlignedPointerInInternalField(kBoundField, const_cast<void*>(bound));
  data->SetInternalField(kOwnerField, FromNapi(owner));
  v8::Local<v8::Function> function;
  if (!v8::Function::New(context, Call, data, 1, v8::ConstructorBehavior::kThrow)
           .ToLocal(&function)) {
    return nullptr;
  }
  return ToNapi(function);
}

}  // extern "C"
