# CUDA is optional. With nvcc present (QUANTD_CUDA=AUTO) the CUDA backend is compiled for Hopper
# (sm_90a machine code) plus compute_80 PTX that newer GPUs JIT-compile; without it the build is CPU-only.
set(QUANTD_CUDA_ENABLED OFF)
if(NOT QUANTD_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # Architectures are given as explicit -gencode flags below (CMake 3.25 does not know "90a").
    set(CMAKE_CUDA_ARCHITECTURES OFF)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(QUANTD_CUDA_GENCODE
        "-gencode=arch=compute_90a,code=sm_90a" "-gencode=arch=compute_80,code=compute_80")
    set(QUANTD_CUDA_ENABLED ON)
  elseif(QUANTD_CUDA STREQUAL "ON")
    message(FATAL_ERROR "QUANTD_CUDA=ON but no CUDA compiler was found (looked for nvcc, "
                        "/usr/local/cuda/bin/nvcc)")
  endif()
endif()

# quantd_cuda_target(target): applies the gencode flags and sane nvcc options to a CUDA target.
function(quantd_cuda_target target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:${QUANTD_CUDA_GENCODE} --expt-relaxed-constexpr -lineinfo>)
  set_target_properties(${target} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
endfunction()
