import Foundation

/// The median, minimum and maximum of repeated timings of the same work, after warm-up.
struct Measurement {
    var values: [Double]
    var median: Double {
        let s = values.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
    var min: Double { values.min() ?? .nan }
    var max: Double { values.max() ?? .nan }

    /// Times `body` (which does `work` units per call) `repetitions` times after `warmup` calls; values are units/s.
    static func rate(repetitions: Int, warmup: Int, work: Double, _ body: () throws -> Void) rethrows -> Measurement {
        for _ in 0..<warmup { try body() }
        var values = [Double]()
        for _ in 0..<repetitions {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            values.append(work / seconds)
        }
        return Measurement(values: values)
    }

    /// Times `measured` and `reference` (each `work` units per call) in alternating repetitions, so that the
    /// machine's drift (large on a shared VM) falls on both alike: the rates of `measured`, and the median of the
    /// per-repetition ratios measured / reference.
    static func paired(repetitions: Int, work: Double, measured: () -> Void, reference: () -> Void)
        -> (rate: Measurement, ratio: Double) {
        var rates = [Double](), ratios = [Double]()
        for _ in 0..<repetitions {
            let referenceRate = Measurement.rate(repetitions: 1, warmup: 0, work: work, reference).median
            let measuredRate = Measurement.rate(repetitions: 1, warmup: 0, work: work, measured).median
            rates.append(measuredRate)
            ratios.append(measuredRate / referenceRate)
        }
        return (Measurement(values: rates), Measurement(values: ratios).median)
    }
}

/// One line of the benchmark's table and JSON (`rows`): a kind and the fields that apply to it.
struct Row: Codable {
    var kind: String
    var name: String?
    var batch: Int?
    var latent: Int?
    var posterior: String?
    var samples: Int?
    var threads: Int?
    var parallelism: String?
    var competing_process: Bool?
    var samples_per_second: Double?
    var samples_per_second_min: Double?
    var samples_per_second_max: Double?
    var gflops: Double?
    var gflops_min: Double?
    var gflops_max: Double?
    /// The step's GFLOP/s over the machine's own GEMM peak: the 1024³ GEMM on one thread, times the threads.
    var peak_fraction: Double?
    var efficiency: Double?
    /// Tensor parallelism: the efficiency against its GEMMs run without the stages' barriers (the GEMM work alone).
    var efficiency_unsynchronized: Double?
    var bytes_allocated_per_step: Double?
    var allocations_per_step: Double?
    var speedup: Double?
    /// Thread scaling: the speed-up of the step's GEMMs alone (`GEMMReplay`) over one thread's.
    var gemm_speedup: Double?
    /// Thread scaling, tensor parallelism: the same with each worker running its GEMMs back to back, no barriers.
    var gemm_speedup_unsynchronized: Double?
    var microseconds: Double?
    var rows_m: Int?
    var columns_n: Int?
    var inner_k: Int?
}
