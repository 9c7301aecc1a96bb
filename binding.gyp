{
  "targets": [
    {
      "target_name": "lmforge",
      "sources": ["native/lmf.cc", "native/ops.cc", "native/addon.cc", "native/optim.cc", "native/allocator.cc", "native/linear.cc", "native/attention.cc", "native/dropout.cc", "native/distributed.cc", "native/reducer.cc"],
      "include_dirs": ["<!@(node scripts/find-libtorch.mjs --include)"],
      "libraries": ["<!@(node scripts/find-libtorch.mjs --libs)"],
      "cflags!": ["-fno-exceptions"],
      # -fopenmp: at::parallel_for is a header template that compiles to OpenMP in our own code;
      # without the flag its loops (fused AdamW, dropout masks, attention) run on one thread.
      # -fno-math-errno: nothing here reads errno after a math call, and with it GCC keeps sqrt a
      # scalar instruction plus a libm call for negative inputs, which stops vectorisation (the
      # fused AdamW loop ran scalar: slower than PyTorch's foreach AdamW). -ffp-contract=off: a
      # product is fused into an FMA only where the code says so (the fused AdamW rounds as
      # PyTorch's ops do, bit for bit).
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fopenmp", "-O2", "-fno-math-errno", "-ffp-contract=off", "-fexceptions", "-frtti", "-Wno-deprecated-declarations", "-Wno-unused-parameter",
                    "<!@(node scripts/find-libtorch.mjs --cflags)"],
      "ldflags": ["-fopenmp"],
      # LMFORGE_NCCL=1 where a CUDA libtorch with NCCL was found (native/distributed.h); else nothing
      "defines": ["NAPI_VERSION=8", "<!@(node scripts/find-libtorch.mjs --defines)"]
    },
    {
      # execve for the `lmforge` command's restart under a faster malloc (native/exec.c): plain C,
      # nothing linked, so that loading it before libtorch costs nothing
      "target_name": "lmforge_exec",
      "sources": ["native/exec.c"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
