//! `tensorlens kernel worker`: the process that owns a CUDA context and times kernels, speaking
//! JSON lines on stdin/stdout. It is separate from the language server so that a kernel that
//! hangs or corrupts memory costs one worker, never the server; the server kills it on a time-out
//! and starts a fresh one for the next request.
//!
//! Measurement after nvbench: load the module and launch once before anything is timed, then time
//! samples with CUDA events; in cold mode write an L2-sized buffer before every sample; batch
//! several launches per event pair when one launch is short; stop on the noise rule or time-out.
//! Driver calls go through cudarc's `sys` layer, and only these: the test stand-in for libcuda
//! answers exactly this set.

use std::collections::HashMap;
use std::ffi::{c_void, CStr, CString};
use std::io::{BufRead, Write};
use std::time::Instant;

use cudarc::driver::sys::{self, CUresult};
use serde::{Deserialize, Serialize};

use super::spec::{Element, LaunchSpec, Param};
use super::stats::{self, Stop, StopRule, Summary};

/// One request line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub op: Op,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// The device, or why there is none.
    Hello,
    Time(Box<TimeRequest>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimeRequest {
    pub ptx: String,
    /// The PTX entry (lowered) name.
    pub entry: String,
    pub spec: LaunchSpec,
    #[serde(default)]
    pub rule: StopRule,
    /// Clear L2 before every sample (the default), or leave it warm.
    #[serde(default = "yes")]
    pub cold: bool,
}

fn yes() -> bool {
    true
}

/// One answer line: `ok` or `error`, for the request with that id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ok: Option<Answer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<WorkerError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    Timing(Box<Timing>),
    Device(Device),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerError {
    /// `no_driver`, `no_device`, `driver_too_old`, `module`, `launch`, `request`, `cuda`.
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub name: String,
    pub arch: String,
    pub driver_version: i32,
    pub sm_clock_khz: i32,
    pub memory_clock_khz: i32,
    pub bus_width_bits: i32,
    pub l2_bytes: i32,
    /// Theoretical DRAM bandwidth: two transfers per memory clock over the bus, in GB/s.
    pub peak_bandwidth_gbs: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub device: Device,
    /// Per launch, in seconds.
    pub summary: Summary,
    pub stop: Stop,
    /// Launches per timed sample; more than one for short kernels.
    pub batch: u32,
    pub cold: bool,
    /// Bytes written to clear L2 before each sample (0 when hot).
    pub l2_flush_bytes: u64,
    pub bytes: f64,
    pub bandwidth_gbs: f64,
    /// Achieved over theoretical bandwidth, 0 to 1.
    pub bandwidth_fraction: f64,
    pub flops_per_second: Option<f64>,
    /// SM clock when sampling started and ended (from NVML, where it is present).
    pub sm_clock_mhz: Option<(u32, u32)>,
    pub clock_dropped: bool,
    /// The noise stayed above the threshold until the time-out.
    pub noisy: bool,
    /// The samples, per launch, in seconds (the first 2,000; the summary covers all).
    pub samples: Vec<f64>,
}

/// Dynamic shared memory a launch may ask for without raising the function's limit first.
const DEFAULT_DYNAMIC_SHARED_BYTES: u32 = 48 * 1024;

/// Samples sent back with a result; a 15 s run of 1 ms samples would be 15,000.
const MAX_SAMPLES_SENT: usize = 2000;

/// Runs the worker loop on stdin/stdout until stdin closes.
pub fn serve() -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut worker = Worker::default();
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let (response, fatal) = match serde_json::from_str::<Request>(&line) {
            Ok(request) => worker.handle(request),
            Err(err) => (Response::error(0, "request", format!("not a request: {err}")), false),
        };
        let mut out = stdout.lock();
        writeln!(out, "{}", serde_json::to_string(&response)?)?;
        out.flush()?;
        // After an illegal address or a trap the context is unusable: exit, and the server starts
        // a fresh worker for the next request.
        if fatal {
            std::process::exit(3);
        }
    }
    Ok(())
}

impl Response {
    fn error(id: u64, kind: &str, message: impl Into<String>) -> Response {
        Response { id, ok: None, error: Some(WorkerError { kind: kind.into(), message: message.into() }) }
    }
}

#[derive(Default)]
struct Worker {
    context: Option<Context>,
    modules: HashMap<String, sys::CUmodule>,
}

struct Context {
    device: Device,
    #[allow(dead_code)] // Kept so the context stays current for this thread's lifetime.
    handle: sys::CUcontext,
}

/// A driver failure: the message, and whether the context is beyond use.
struct Failure {
    kind: &'static str,
    message: String,
    fatal: bool,
}

type Result<T> = std::result::Result<T, Failure>;

fn check(result: CUresult, what: &str) -> Result<()> {
    if result == CUresult::CUDA_SUCCESS {
        return Ok(());
    }
    let mut text: *const std::ffi::c_char = std::ptr::null();
    // SAFETY: cuGetErrorString writes a pointer to a static string, or leaves it null.
    let described = unsafe { sys::cuGetErrorString(result, &mut text) } == CUresult::CUDA_SUCCESS && !text.is_null();
    let name = if described {
        // SAFETY: non-null, NUL-terminated, static.
        unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned()
    } else {
        format!("{result:?}")
    };
    // Errors after which the context cannot be used again.
    let fatal = matches!(
        result,
        CUresult::CUDA_ERROR_ILLEGAL_ADDRESS
            | CUresult::CUDA_ERROR_ILLEGAL_INSTRUCTION
            | CUresult::CUDA_ERROR_MISALIGNED_ADDRESS
            | CUresult::CUDA_ERROR_INVALID_PC
            | CUresult::CUDA_ERROR_LAUNCH_FAILED
            | CUresult::CUDA_ERROR_HARDWARE_STACK_ERROR
            | CUresult::CUDA_ERROR_ASSERT
    );
    let kind = match result {
        CUresult::CUDA_ERROR_NO_DEVICE => "no_device",
        CUresult::CUDA_ERROR_UNSUPPORTED_PTX_VERSION => "driver_too_old",
        _ if fatal => "launch",
        _ => "cuda",
    };
    Err(Failure { kind, message: format!("{what}: {name} ({result:?})"), fatal })
}

impl Worker {
    fn handle(&mut self, request: Request) -> (Response, bool) {
        let id = request.id;
        let outcome = match request.op {
            Op::Hello => self.context().map(|c| Answer::Device(c.device.clone())),
            Op::Time(time) => self.time(&time).map(|t| Answer::Timing(Box::new(t))),
        };
        match outcome {
            Ok(answer) => (Response { id, ok: Some(answer), error: None }, false),
            Err(failure) => (Response::error(id, failure.kind, failure.message), failure.fatal),
        }
    }

    fn context(&mut self) -> Result<&Context> {
        if self.context.is_none() {
            self.context = Some(open_context()?);
        }
        Ok(self.context.as_ref().expect("just set"))
    }

    fn time(&mut self, request: &TimeRequest) -> Result<Timing> {
        let device = self.context()?.device.clone();
        let function = self.function(&request.ptx, &request.entry)?;
        let spec = &request.spec;
        if spec.shared_bytes > DEFAULT_DYNAMIC_SHARED_BYTES {
            // Past 48 KiB a function must be allowed its dynamic shared memory first, as Triton's
            // launcher does for its kernels; the driver refuses the launch otherwise.
            let bytes = i32::try_from(spec.shared_bytes).unwrap_or(i32::MAX);
            // SAFETY: `function` is a live handle of a loaded module.
            check(
                unsafe {
                    sys::cuFuncSetAttribute(
                        function,
                        sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                        bytes,
                    )
                },
                &format!("allowing {} bytes of dynamic shared memory", spec.shared_bytes),
            )?;
        }
        let mut launch = Launch::new(spec)?;
        let flush_bytes = if request.cold { device.l2_bytes.max(0) as u64 } else { 0 };
        let flush = if flush_bytes > 0 { Some(DeviceBuffer::new(flush_bytes as usize)?) } else { None };
        let (start, stop) = (Event::new()?, Event::new()?);
        let clock_start = nvml_sm_clock_mhz();

        // Warm-up: the first launch may JIT or page things in; nothing of it is timed.
        launch.run(function, spec)?;
        synchronize()?;
        // One timed launch decides how many launches each sample holds.
        let single = timed(&start, &stop, || launch.run(function, spec))?;
        let batch = stats::batch_size(single, 1e-3);

        let mut samples = Vec::new();
        let mut sampled = 0.0;
        let began = Instant::now();
        let stop_reason = loop {
            if let Some(buffer) = &flush {
                buffer.fill(0xA5)?;
            }
            let elapsed = timed(&start, &stop, || {
                for _ in 0..batch {
                    launch.run(function, spec)?;
                }
                Ok(())
            })?;
            sampled += elapsed;
            samples.push(elapsed / f64::from(batch));
            if let Some(reason) = stats::decide(&samples, sampled, began.elapsed().as_secs_f64(), &request.rule) {
                break reason;
            }
        };
        let clock_end = nvml_sm_clock_mhz();
        let summary = stats::summarize(&samples).expect("at least one sample");
        let bandwidth_gbs = if summary.median > 0.0 { spec.bytes / summary.median / 1e9 } else { 0.0 };
        let sm_clock_mhz = clock_start.zip(clock_end);
        Ok(Timing {
            bandwidth_fraction: if device.peak_bandwidth_gbs > 0.0 {
                bandwidth_gbs / device.peak_bandwidth_gbs
            } else {
                0.0
            },
            flops_per_second: spec.flops.filter(|_| summary.median > 0.0).map(|f| f / summary.median),
            // A drop of more than 5% means the GPU throttled while it was measured.
            clock_dropped: sm_clock_mhz.is_some_and(|(a, b)| f64::from(b) < 0.95 * f64::from(a)),
            noisy: stop_reason == Stop::TimedOut && summary.noise >= request.rule.max_noise,
            device,
            summary,
            stop: stop_reason,
            batch,
            cold: request.cold,
            l2_flush_bytes: flush_bytes,
            bytes: spec.bytes,
            bandwidth_gbs,
            sm_clock_mhz,
            samples: samples.into_iter().take(MAX_SAMPLES_SENT).collect(),
        })
    }

    fn function(&mut self, ptx: &str, entry: &str) -> Result<sys::CUfunction> {
        let module = match self.modules.get(ptx) {
            Some(module) => *module,
            None => {
                let module = load_module(ptx)?;
                self.modules.insert(ptx.to_string(), module);
                module
            }
        };
        let name = CString::new(entry).map_err(|_| Failure {
            kind: "request",
            message: "bad entry name".into(),
            fatal: false,
        })?;
        let mut function = std::ptr::null_mut();
        // SAFETY: `module` is loaded; `name` is NUL-terminated.
        check(unsafe { sys::cuModuleGetFunction(&mut function, module, name.as_ptr()) }, &format!("kernel {entry}"))?;
        Ok(function)
    }
}

fn open_context() -> Result<Context> {
    // SAFETY: only probes whether libcuda opens; every call below needs it.
    if !unsafe { sys::is_culib_present() } {
        return Err(Failure {
            kind: "no_driver",
            message: "no NVIDIA driver here (libcuda.so.1 was not found): time kernels on a machine with a GPU, \
                      or set the `timingLauncher` setting to run the worker there (e.g. [\"ssh\", \"gpu-host\"])"
                .into(),
            fatal: false,
        });
    }
    // SAFETY: plain driver calls with valid out-pointers.
    unsafe {
        check(sys::cuInit(0), "cuInit")?;
        let mut count = 0;
        check(sys::cuDeviceGetCount(&mut count), "cuDeviceGetCount")?;
        if count == 0 {
            return Err(Failure {
                kind: "no_device",
                message: "the NVIDIA driver sees no GPU here: set `timingLauncher` to run on a GPU host".into(),
                fatal: false,
            });
        }
        let mut device = 0;
        check(sys::cuDeviceGet(&mut device, 0), "cuDeviceGet")?;
        let mut name = [0 as std::ffi::c_char; 256];
        check(sys::cuDeviceGetName(name.as_mut_ptr(), name.len() as i32, device), "cuDeviceGetName")?;
        let name = CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned();
        let attribute = |attribute: sys::CUdevice_attribute| -> Result<i32> {
            let mut value = 0;
            check(sys::cuDeviceGetAttribute(&mut value, attribute, device), "cuDeviceGetAttribute")?;
            Ok(value)
        };
        use sys::CUdevice_attribute as A;
        let major = attribute(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
        let minor = attribute(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
        let memory_clock_khz = attribute(A::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE)?;
        let bus_width_bits = attribute(A::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH)?;
        let mut driver_version = 0;
        check(sys::cuDriverGetVersion(&mut driver_version), "cuDriverGetVersion")?;
        let mut handle = std::ptr::null_mut();
        check(sys::cuDevicePrimaryCtxRetain(&mut handle, device), "cuDevicePrimaryCtxRetain")?;
        check(sys::cuCtxSetCurrent(handle), "cuCtxSetCurrent")?;
        Ok(Context {
            device: Device {
                name,
                arch: format!("sm_{major}{minor}"),
                driver_version,
                sm_clock_khz: attribute(A::CU_DEVICE_ATTRIBUTE_CLOCK_RATE)?,
                memory_clock_khz,
                bus_width_bits,
                l2_bytes: attribute(A::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)?,
                peak_bandwidth_gbs: 2.0 * f64::from(memory_clock_khz) * 1e3 * f64::from(bus_width_bits) / 8.0 / 1e9,
            },
            handle,
        })
    }
}

fn load_module(ptx: &str) -> Result<sys::CUmodule> {
    let image = CString::new(ptx).map_err(|_| Failure {
        kind: "request",
        message: "PTX with a NUL byte".into(),
        fatal: false,
    })?;
    let mut log = vec![0u8; 8192];
    let mut options =
        [sys::CUjit_option::CU_JIT_ERROR_LOG_BUFFER, sys::CUjit_option::CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES];
    let mut values = [log.as_mut_ptr() as *mut c_void, log.len() as *mut c_void];
    let mut module = std::ptr::null_mut();
    // SAFETY: the option arrays match in length; the log buffer outlives the call.
    let result = unsafe {
        sys::cuModuleLoadDataEx(
            &mut module,
            image.as_ptr() as *const c_void,
            2,
            options.as_mut_ptr(),
            values.as_mut_ptr(),
        )
    };
    check(result, "loading the PTX").map_err(|mut failure| {
        let log = String::from_utf8_lossy(&log[..log.iter().position(|&b| b == 0).unwrap_or(0)]).into_owned();
        if failure.kind == "driver_too_old" {
            failure.message = format!(
                "{}: the driver is older than the NVRTC that made this PTX; update the driver, or compile with an \
                 NVRTC no newer than it",
                failure.message
            );
        } else {
            failure.kind = "module";
        }
        if !log.is_empty() {
            failure.message = format!("{}\n{log}", failure.message);
        }
        failure
    })?;
    Ok(module)
}

fn synchronize() -> Result<()> {
    // SAFETY: a context is current.
    check(unsafe { sys::cuCtxSynchronize() }, "running the kernel")
}

/// Seconds between two events around `work`.
fn timed(start: &Event, stop: &Event, work: impl FnOnce() -> Result<()>) -> Result<f64> {
    start.record()?;
    work()?;
    stop.record()?;
    stop.synchronize()?;
    let mut milliseconds = 0f32;
    // SAFETY: both events were recorded and the second has completed.
    check(unsafe { sys::cuEventElapsedTime_v2(&mut milliseconds, start.0, stop.0) }, "cuEventElapsedTime_v2")?;
    Ok(f64::from(milliseconds) / 1e3)
}

struct Event(sys::CUevent);

impl Event {
    fn new() -> Result<Event> {
        let mut event = std::ptr::null_mut();
        // SAFETY: valid out-pointer; flags 0 = default (timing enabled).
        check(unsafe { sys::cuEventCreate(&mut event, 0) }, "cuEventCreate")?;
        Ok(Event(event))
    }

    fn record(&self) -> Result<()> {
        // SAFETY: live event, default stream.
        check(unsafe { sys::cuEventRecord(self.0, std::ptr::null_mut()) }, "cuEventRecord")
    }

    fn synchronize(&self) -> Result<()> {
        // SAFETY: live event.
        check(unsafe { sys::cuEventSynchronize(self.0) }, "running the kernel")
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: created by cuEventCreate, destroyed once.
        unsafe { sys::cuEventDestroy_v2(self.0) };
    }
}

struct DeviceBuffer {
    pointer: sys::CUdeviceptr,
    bytes: usize,
}

impl DeviceBuffer {
    fn new(bytes: usize) -> Result<DeviceBuffer> {
        let mut pointer = 0;
        // SAFETY: valid out-pointer.
        check(unsafe { sys::cuMemAlloc_v2(&mut pointer, bytes.max(1)) }, &format!("allocating {bytes} bytes"))?;
        Ok(DeviceBuffer { pointer, bytes })
    }

    fn fill(&self, byte: u8) -> Result<()> {
        // SAFETY: the buffer holds `bytes` bytes.
        check(unsafe { sys::cuMemsetD8_v2(self.pointer, byte, self.bytes) }, "clearing L2")
    }

    fn upload(&self, data: &[u8]) -> Result<()> {
        // SAFETY: `data` is at most the buffer's size (callers make it exactly that).
        check(
            unsafe { sys::cuMemcpyHtoD_v2(self.pointer, data.as_ptr() as *const c_void, data.len().min(self.bytes)) },
            "copying inputs",
        )
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated by cuMemAlloc_v2, freed once.
        unsafe { sys::cuMemFree_v2(self.pointer) };
    }
}

/// The kernel's arguments: device buffers and the bytes of each scalar, in parameter order.
struct Launch {
    _buffers: Vec<DeviceBuffer>,
    values: Vec<Vec<u8>>,
    pointers: Vec<*mut c_void>,
}

impl Launch {
    fn new(spec: &LaunchSpec) -> Result<Launch> {
        let mut buffers = Vec::new();
        let mut values = Vec::new();
        let mut random = Random(0x9E37_79B9_7F4A_7C15);
        for param in &spec.params {
            match param {
                // A buffer of nothing is a null pointer, as Triton passes for scratch its kernel
                // does not need.
                Param::Buffer { count: 0, .. } => values.push(0u64.to_ne_bytes().to_vec()),
                Param::Buffer { element, count, .. } => {
                    let bytes = usize::try_from(count * u64::from(element.bytes())).unwrap_or(usize::MAX);
                    let buffer = DeviceBuffer::new(bytes)?;
                    buffer.upload(&random.fill_tiled(*element, *count as usize))?;
                    values.push(buffer.pointer.to_ne_bytes().to_vec());
                    buffers.push(buffer);
                }
                Param::Int { value, bytes, .. } => {
                    values.push(value.to_ne_bytes()[..usize::from(*bytes).min(8)].to_vec())
                }
                Param::Float { value, bytes: 4, .. } => values.push((*value as f32).to_ne_bytes().to_vec()),
                Param::Float { value, .. } => values.push(value.to_ne_bytes().to_vec()),
            }
        }
        Ok(Launch { _buffers: buffers, values, pointers: Vec::new() })
    }

    fn run(&mut self, function: sys::CUfunction, spec: &LaunchSpec) -> Result<()> {
        self.pointers = self.values.iter_mut().map(|v| v.as_mut_ptr() as *mut c_void).collect();
        let [gx, gy, gz] = spec.grid;
        let [bx, by, bz] = spec.block;
        // SAFETY: one pointer per kernel parameter, each to a value of the parameter's size.
        check(
            unsafe {
                sys::cuLaunchKernel(
                    function,
                    gx,
                    gy,
                    gz,
                    bx,
                    by,
                    bz,
                    spec.shared_bytes,
                    std::ptr::null_mut(),
                    self.pointers.as_mut_ptr(),
                    std::ptr::null_mut(),
                )
            },
            "launching the kernel",
        )
    }
}

/// Deterministic inputs: the same kernel gets the same data on every run and every machine.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// `count` elements: a block of 64 Ki random elements repeated, which is as good for timing
    /// and fast even for gigabyte buffers.
    fn fill_tiled(&mut self, element: Element, count: usize) -> Vec<u8> {
        let block = self.fill(element, count.min(1 << 16));
        let bytes = count * element.bytes() as usize;
        let mut out = Vec::with_capacity(bytes);
        while out.len() < bytes && !block.is_empty() {
            let take = (bytes - out.len()).min(block.len());
            out.extend_from_slice(&block[..take]);
        }
        out
    }

    fn fill(&mut self, element: Element, count: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(count * element.bytes() as usize);
        for _ in 0..count {
            match element {
                Element::F32 => out.extend(self.unit().to_ne_bytes()),
                Element::F64 => out.extend(f64::from(self.unit()).to_ne_bytes()),
                // Half and bfloat16 from the top bits of an f32 (bf16) or a rounded conversion (f16).
                Element::Bf16 => out.extend(((self.unit().to_bits() >> 16) as u16).to_ne_bytes()),
                Element::F16 => out.extend(f32_to_f16(self.unit()).to_ne_bytes()),
                // Small non-negative integers, safe as indices into buffers of n elements.
                Element::I8 | Element::U8 => out.push((self.next() % 64) as u8),
                Element::I16 => out.extend(((self.next() % 64) as u16).to_ne_bytes()),
                Element::I32 | Element::U32 => out.extend(((self.next() % 64) as u32).to_ne_bytes()),
                Element::I64 | Element::U64 => out.extend((self.next() % 64).to_ne_bytes()),
                Element::Raw(bytes) => {
                    for _ in 0..bytes / 4 {
                        out.extend(self.unit().to_ne_bytes());
                    }
                }
            }
        }
        out
    }
}

/// IEEE half from f32 for values in [-1, 1) (no overflow, subnormals flushed).
fn f32_to_f16(value: f32) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xff) as i32 - 127 + 15;
    if exponent <= 0 {
        return sign;
    }
    sign | ((exponent as u16) << 10) | ((bits >> 13) & 0x3ff) as u16
}

/// The SM clock now, in MHz, from NVML when the driver ships it; `None` otherwise.
fn nvml_sm_clock_mhz() -> Option<u32> {
    type Init = unsafe extern "C" fn() -> i32;
    type ByIndex = unsafe extern "C" fn(u32, *mut *mut c_void) -> i32;
    type Clock = unsafe extern "C" fn(*mut c_void, i32, *mut u32) -> i32;
    static NVML: std::sync::OnceLock<Option<libloading::Library>> = std::sync::OnceLock::new();
    // SAFETY: NVML's initialisers have no preconditions.
    let library = NVML.get_or_init(|| unsafe { libloading::Library::new("libnvidia-ml.so.1").ok() }).as_ref()?;
    // SAFETY: the signatures are NVML's; every out-pointer is valid.
    unsafe {
        let init: libloading::Symbol<Init> = library.get(b"nvmlInit_v2").ok()?;
        let by_index: libloading::Symbol<ByIndex> = library.get(b"nvmlDeviceGetHandleByIndex_v2").ok()?;
        let clock: libloading::Symbol<Clock> = library.get(b"nvmlDeviceGetClockInfo").ok()?;
        if init() != 0 {
            return None;
        }
        let mut device = std::ptr::null_mut();
        if by_index(0, &mut device) != 0 {
            return None;
        }
        let mut mhz = 0;
        // 1 = NVML_CLOCK_SM.
        (clock(device, 1, &mut mhz) == 0).then_some(mhz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_lines_round_trip() {
        let hello: Request = serde_json::from_str(r#"{"id": 1, "op": "hello"}"#).unwrap();
        assert!(matches!(hello.op, Op::Hello));
        let error = Response::error(7, "no_driver", "none");
        let line = serde_json::to_string(&error).unwrap();
        assert_eq!(line, r#"{"id":7,"error":{"kind":"no_driver","message":"none"}}"#);
        assert!(serde_json::from_str::<Request>(r#"{"id": 1, "op": "fly"}"#).is_err());
    }

    #[test]
    fn inputs_are_deterministic_and_in_range() {
        let a = Random(1).fill(Element::F32, 1000);
        assert_eq!(a, Random(1).fill(Element::F32, 1000));
        for chunk in a.chunks(4) {
            let v = f32::from_ne_bytes(chunk.try_into().unwrap());
            assert!((-1.0..1.0).contains(&v), "{v}");
        }
        assert_eq!(Random(5).fill(Element::F16, 3).len(), 6);
        assert!(Random(5).fill(Element::I32, 100).chunks(4).all(|c| u32::from_ne_bytes(c.try_into().unwrap()) < 64));
        assert_eq!(f32_to_f16(1.0 - f32::EPSILON).to_ne_bytes().len(), 2);
        assert_eq!(f32_to_f16(0.5), 0x3800);
        assert_eq!(f32_to_f16(-0.5), 0xB800);
    }
}
