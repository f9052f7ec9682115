// The SIMD floor's loop (wasm/kernels.ts `streamFloor`, one history entry) in C, to compare what
// WebAssembly's 128-bit SIMD reaches with native code on the same machine. Prints the best of 20
// timings of `reps` calls, in ms per call and GB/s (5 float32 arrays moved per element).
//
//   gcc -O3 bench/floor.c -o /tmp/floor && /tmp/floor 16384 1000                  # SSE2
//   gcc -O3 -march=native bench/floor.c -o /tmp/floor && /tmp/floor 16384 1000    # this CPU
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

__attribute__((noinline)) static void stream_floor(
    float *restrict out, float *restrict converted, const float *restrict x,
    const float *restrict model_output, const float *restrict h1, int n) {
  for (int i = 0; i < n; i++) {
    float v = x[i];
    float m0 = v + -0.1f * model_output[i];
    converted[i] = m0;
    out[i] = 0.9f * v + 0.3f * (m0 - h1[i]);
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s ELEMENTS REPS\n", argv[0]);
    return 2;
  }
  int n = atoi(argv[1]);
  int reps = atoi(argv[2]);
  if (n <= 0 || reps <= 0) {
    fprintf(stderr, "ELEMENTS and REPS must be positive integers\n");
    return 2;
  }
  float *arrays[5];
  for (int k = 0; k < 5; k++) {
    arrays[k] = aligned_alloc(64, ((size_t)n * 4 + 63) / 64 * 64);
    for (int i = 0; i < n; i++) arrays[k][i] = (float)rand() / RAND_MAX;
  }
  double best = 1e30;
  for (int r = 0; r < 20; r++) {
    double t0 = now_ms();
    for (int s = 0; s < reps; s++) {
      stream_floor(arrays[0], arrays[1], arrays[2], arrays[3], arrays[4], n);
    }
    double ms = (now_ms() - t0) / reps;
    if (ms < best) best = ms;
  }
  printf("n=%d  %.4f ms/call  %.1f GB/s\n", n, best, n * 20.0 / best / 1e6);
  return 0;
}
