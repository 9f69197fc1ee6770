// CU3D_HOST_DEVICE marks a function that host and device code both call: __host__ __device__
// under nvcc, nothing in plain C++, so the CPU build and its tests include the same header.
#pragma once

#if defined(__CUDACC__)
#define CU3D_HOST_DEVICE __host__ __device__
#else
#define CU3D_HOST_DEVICE
#endif
