// execve(2) for Node 20, which has no process.execve: the `lmforge` command restarts itself in
// place with a faster malloc preloaded (src/torch/malloc.ts). In place, not as a child: the
// process keeps its id, its parent and its terminal, so a signal the user sends (Ctrl-C, kill,
// SIGKILL) reaches the process that trains, and its exit status is the command's.
// A separate addon from lmforge.node on purpose: it links nothing but libc, so loading it costs
// microseconds, where lmforge.node would load libtorch only to throw it away.
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void free_strings(char** list) {
  if (!list) return;
  for (char** p = list; *p; p++) free(*p);
  free(list);
}

// A JS string as a malloc'd C string, or NULL (with a pending JS exception) where it is not one.
static char* to_cstring(napi_env env, napi_value value) {
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "execve: expected a string");
    return NULL;
  }
  char* s = malloc(length + 1);
  if (!s) return NULL;
  napi_get_value_string_utf8(env, value, s, length + 1, &length);
  return s;
}

// A JS array of strings as a NULL-terminated malloc'd array, or NULL on error.
static char** to_cstrings(napi_env env, napi_value array) {
  uint32_t n = 0;
  if (napi_get_array_length(env, array, &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "execve: expected an array of strings");
    return NULL;
  }
  char** list = calloc((size_t)n + 1, sizeof(char*));
  if (!list) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    napi_get_element(env, array, i, &item);
    list[i] = to_cstring(env, item);
    if (!list[i]) {
      free_strings(list);
      return NULL;
    }
  }
  return list;
}

// execve(file, argv, env): returns only on failure, by throwing the system's reason.
static napi_value Execve(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "execve(file, argv, env): three arguments");
    return NULL;
  }
  char* file = to_cstring(env, args[0]);
  char** argv = file ? to_cstrings(env, args[1]) : NULL;
  char** envp = argv ? to_cstrings(env, args[2]) : NULL;
  if (envp) {
    // Node's libuv marks the standard streams close-on-exec (it reopens a terminal and dup2s it
    // over fd 0-2 with O_CLOEXEC) and non-blocking: the new image would find them closed and
    // write to /dev/null. Hand them on as a freshly started process would get them.
    for (int fd = 0; fd <= 2; fd++) {
      const int fd_flags = fcntl(fd, F_GETFD);
      if (fd_flags >= 0) fcntl(fd, F_SETFD, fd_flags & ~FD_CLOEXEC);
      const int fl_flags = fcntl(fd, F_GETFL);
      if (fl_flags >= 0) fcntl(fd, F_SETFL, fl_flags & ~O_NONBLOCK);
    }
    execve(file, argv, envp);
    const int err = errno;
    napi_throw_error(env, NULL, strerror(err));
  }
  free(file);
  free_strings(argv);
  free_strings(envp);
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "execve", NAPI_AUTO_LENGTH, Execve, NULL, &fn);
  napi_set_named_property(env, exports, "execve", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
