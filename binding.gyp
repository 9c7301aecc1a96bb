{
  "targets": [
    {
      "target_name": "lmforge",
      "sources": ["native/lmf.cc", "native/ops.cc", "native/addon.cc", "native/optim.cc", "native/allocator.cc", "native/linear.cc", "native/attention.cc", "native/dropout.cc"],
      "include_dirs": ["<!@(node scripts/find-libtorch.mjs --include)"],
      "libraries": ["<!@(node scripts/find-libtorch.mjs --libs)"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions", "-frtti", "-Wno-deprecated-declarations", "-Wno-unused-parameter",
                    "<!@(node scripts/find-libtorch.mjs --cflags)"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
