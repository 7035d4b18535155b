import Foundation
import LatentCore
import LatentData
import LatentEvaluation
import LatentModels

/// A training run's peak memory, estimated from its options and its data set's headers before the data is loaded
/// or any large buffer allocated: what the process holds now, plus the larger of loading the data set and training
/// with a checkpoint being encoded. `addressSpace` adds what is mapped but barely touched (the threads' stacks and
/// malloc arenas, OpenBLAS's whole buffers), which `ulimit -v` bounds and the memory limit does not.
package struct MemoryEstimate: Sendable {
    /// One part of the estimate, for the messages.
    package struct Part: Sendable {
        package var name: String
        package var bytes: Double
    }

    /// Peak resident bytes, what the process holds now included.
    package var resident: Double
    /// Peak mapped bytes, what the process maps now included.
    package var addressSpace: Double
    /// The resident parts of the peak, largest first.
    package var parts: [Part]
    /// The parts of the peak address space, largest first.
    package var mappedParts: [Part]

    /// OpenBLAS's buffer of each thread that calls it (its `BUFFER_SIZE`, 128 MiB on x86-64, and a page), mapped
    /// the first time that thread runs a BLAS routine; only the panels it packs are touched.
    static let blasBufferBytes = Double(128 << 20) + 4096
    /// The panels a GEMM packs in the buffer: a GEMM_P × GEMM_Q block of A and GEMM_Q rows of B per output column
    /// (OpenBLAS's single-precision blocking on x86-64).
    static let blasPanelRows = (p: 768.0, q: 384.0)
    /// The address space glibc reserves for each thread's malloc arena (its HEAP_MAX_SIZE), at most 8 per core.
    static let arenaBytes = Double(64 << 20)
    /// What a thread touches of its stack and arena, and what the rest of a run allocates (JSON, progress, files).
    static let perThreadResident = Double(256 << 10), otherResident = Double(32 << 20)
    /// The examples the run's evaluator passes at a time (`Evaluator`'s default batch).
    static let evaluationBatch = 500

    /// The estimate for a run of `options` on data of sizes `data` (`loaded`: already in memory, so only the
    /// limits' copies are new), as one of `ranks` processes, starting from `process`.
    package init(options: TrainingOptions, data: DatasetSize, loaded: Bool = false, ranks: Int = 1,
                 process: ProcessMemory = .current(), cores: Int = ProcessInfo.processInfo.activeProcessorCount,
                 stackBytes: Double = ProcessMemory.threadStackBytes()) {
        let configuration = options.configuration
        let scalar = Double(MemoryLayout<Float>.stride)
        let parameters = Double(VariationalAutoencoder<Float>.parameterCount(of: configuration))
        let pixels = Double(configuration.inputs)
        let trainCount = min(options.trainLimit ?? data.trainImages.count, data.trainImages.count)
        let testCount = min(options.testLimit ?? data.testImages.count, data.testImages.count)

        // Loading: each file read whole, inflated, then its items copied out; then the limits' copies.
        var kept = 0.0, loading = 0.0, loadingMapped = 0.0
        if !loaded {
            for file in data.files {
                let raw = Double(file.fileBytes), inflated = Double(file.decompressedBytes)
                var reading = 2 * raw, readingMapped = 2 * raw
                if file.compressed {
                    // The inflater reserves 4× the compressed size, and doubles its output past that.
                    let reserved = 4 * raw, grows = inflated > reserved
                    reading += inflated + Double(1 << 20) + (grows ? inflated : 0)
                    readingMapped += max(reserved, grows ? 2 * inflated : reserved) + Double(1 << 20)
                        + (grows ? inflated : 0)
                }
                let parsing = (file.compressed ? inflated : raw) + Double(file.payloadBytes)
                loading = max(loading, kept + max(reading, parsing))
                loadingMapped = max(loadingMapped, kept + max(readingMapped, parsing))
                kept += Double(file.payloadBytes)
            }
        }
        for (set, limit) in [(data.trainImages, trainCount), (data.testImages, testCount)] where limit < set.count {
            let copy = Double(limit * set.itemBytes)
            loading = max(loading, kept + copy)
            loadingMapped = max(loadingMapped, kept + copy)
            kept += copy - (loaded ? 0 : Double(set.payloadBytes))
        }

        // Training: the step's strategy at the effective batch, as `Trainer` chooses it.
        let threads = max(1, options.threads)
        let effective = max(1, min(options.batch, trainCount))
        let rows = (effective + ranks - 1) / ranks
        var parallelism = options.parallelism.resolved(batchSize: rows, threads: threads)
        if (parallelism == .data || parallelism == .tensor) && min(threads, rows) <= 1 { parallelism = .reference }
        let step = MemoryEstimate.stepScalars(configuration, parallelism: parallelism, rows: rows, threads: threads,
                                              parameters: Int(parameters))
        let distributed = ranks > 1 ? parameters : 0
        let evaluators = Evaluator.workers(threads: threads, batchSize: MemoryEstimate.evaluationBatch)
        let evaluation = Double(evaluators) * Double(StepWorkspace<Float>.scalars(
            configuration, capacity: (MemoryEstimate.evaluationBatch + evaluators - 1) / evaluators, samples: 1))

        // Threads: the step's pool, the evaluator's when it cannot share it, and OpenBLAS's own for `blas`.
        let blasThreads = parallelism == .blas ? min(threads, BLASThreads.maximum ?? threads) : 1
        let separateEvaluationPool = parallelism == .blas || evaluators != step.workers
        // OpenBLAS's own threads each hold a buffer from their start; the pools' threads take one from OpenBLAS's
        // shared set while they run a BLAS routine, so as many as run at once (those at load are counted in `process`).
        let newBLASThreads = parallelism == .blas ? max(0, blasThreads - BLASThreads.highest) : 0
        let newThreads = (step.workers - 1) + (separateEvaluationPool ? evaluators - 1 : 0) + newBLASThreads
        let blasCallers = Double(max(step.workers, evaluators) + newBLASThreads)
        let widths = [configuration.inputs, configuration.posteriorParameterCount] + configuration.hidden
        let widest = Double(widths.max()!)
        let panels = MemoryEstimate.blasPanelRows
        let blasTouched = blasCallers * min(MemoryEstimate.blasBufferBytes,
                                            scalar * (panels.p * panels.q + panels.q * widest) + 4096)
        let arenas = Double(min(newThreads, 8 * max(1, cores)))

        let training: [Part] = [
            Part(name: "parameters, gradient and Adam's moments", bytes: 4 * parameters * scalar),
            Part(name: "the step's workspaces", bytes: (Double(step.scalars) + distributed) * scalar),
            Part(name: "the test evaluation", bytes: (evaluation + Double(testCount) * pixels) * scalar),
            Part(name: "the data set", bytes: kept + Double(trainCount) * 16),
            Part(name: "OpenBLAS's buffers", bytes: blasTouched),
            Part(name: "threads and the rest", bytes: Double(newThreads) * MemoryEstimate.perThreadResident
                + MemoryEstimate.otherResident),
        ]
        // Encoding a checkpoint copies the parameters and both moments, then builds the file's bytes in an array
        // that grows past them once (the old bytes, the new and the copies at once).
        let checkpoint = Part(name: "checkpoint encoding", bytes: 3 * 3 * parameters * scalar)
        let steady = training.reduce(0) { $0 + $1.bytes } + checkpoint.bytes
        let loadingPart = Part(name: "loading the data set", bytes: loading + MemoryEstimate.otherResident)
        let now = Part(name: "the process so far", bytes: process.resident)
        parts = ([now] + (loadingPart.bytes > steady ? [loadingPart] : training + [checkpoint]))
            .sorted { $0.bytes > $1.bytes }
        resident = process.resident + max(loadingPart.bytes, steady)

        let threadsMapped = Double(newThreads) * stackBytes + arenas * MemoryEstimate.arenaBytes
        let blasPart = Part(name: "OpenBLAS's buffers", bytes: blasCallers * MemoryEstimate.blasBufferBytes)
        let steadyMapped = training.filter { $0.name != blasPart.name } + [
            blasPart, Part(name: "thread stacks and malloc arenas", bytes: threadsMapped),
            Part(name: checkpoint.name, bytes: 4 * 3 * parameters * scalar),
        ]
        let loadingMappedPart = Part(name: loadingPart.name, bytes: loadingMapped + MemoryEstimate.otherResident)
        let steadyMappedBytes = steadyMapped.reduce(0) { $0 + $1.bytes }
        let base = Part(name: "the process's mappings so far", bytes: max(process.mapped, process.resident))
        mappedParts = ([base] + (loadingMappedPart.bytes > steadyMappedBytes ? [loadingMappedPart] : steadyMapped))
            .sorted { $0.bytes > $1.bytes }
        addressSpace = base.bytes + max(loadingMappedPart.bytes, steadyMappedBytes)
    }

    /// The step's workers and the scalars its strategy allocates for `rows` rows per step (`ReferenceStep`,
    /// `DataParallelStep`, `TensorParallelStep` and their `WeightUpdates`).
    package static func stepScalars(_ configuration: ModelConfiguration, parallelism: Trainer.Parallelism, rows: Int,
                            threads: Int, parameters: Int) -> (workers: Int, scalars: Int) {
        let layers = MemoryEstimate.layers(configuration)
        switch parallelism {
        case .auto, .reference, .blas:
            return (1, StepWorkspace<Float>.scalars(configuration, capacity: rows) + parameters)
        case .data:
            let workers = max(1, min(threads, rows)), capacity = (rows + workers - 1) / workers
            // `UpdateBlock.queue`: each layer's output rows cut into up to 2 × workers blocks.
            let block = layers.map { layer in
                let count = workers == 1 ? 1 : max(1, min(2 * workers, layer.outputs / 32))
                return (layer.outputs + count - 1) / count * (layer.inputs + 1)
            }.max()!
            return (workers, workers * (StepWorkspace<Float>.scalars(configuration, capacity: capacity)
                + parameters + block))
        case .tensor:
            let workers = max(1, min(threads, rows, ColumnTeam.maximumWorkers))
            let capacity = (rows + workers - 1) / workers, shared = workers * capacity
            // `TensorParallelStep`'s partial sums: per worker but the first, the output gradient of each layer whose
            // next layer's backward pass runs as partial sums (`TeamStage.schedule`).
            let m = configuration.samples
            let headByBlocks = configuration.posteriorParameterCount < 16 * workers
            let encoderLayers = configuration.hidden.count + 1
            var partial = 0
            for (index, layer) in layers.enumerated() {
                let decoder = index >= encoderLayers
                let position = decoder ? index - encoderLayers : index
                let count = decoder ? configuration.hidden.count + 1
                    : (headByBlocks ? encoderLayers - 1 : encoderLayers)
                let next = position + 1
                guard next >= 1, next < count,
                      TeamStage.splitsInnerDimension(rows: rows * (decoder ? m : 1)) else { continue }
                partial += shared * (decoder ? m : 1) * layer.outputs
            }
            // `UpdateBlock.owned`: blocks of about 65 536 scalars of a worker's rows.
            let block = layers.map { min($0.outputs * ($0.inputs + 1), 65_536 + $0.inputs + 1) }.max()!
            return (workers, StepWorkspace<Float>.scalars(configuration, capacity: shared)
                + workers * (StepWorkspace<Float>.viewScalars(configuration, examples: capacity) + parameters + block)
                + (workers - 1) * partial)
        }
    }

    /// Every layer's (inputs, outputs), the encoder's then the decoder's.
    static func layers(_ configuration: ModelConfiguration) -> [(inputs: Int, outputs: Int)] {
        let encoder = [configuration.inputs] + configuration.hidden + [configuration.posteriorParameterCount]
        let decoder = [configuration.latent] + configuration.hidden.reversed() + [configuration.inputs]
        return [encoder, decoder].flatMap { widths in zip(widths, widths.dropFirst()).map { ($0, $1) } }
    }

    /// Throws, with one line naming the estimate, the limit and the flags that lower it, when the estimate exceeds
    /// the memory this process may use (`MemoryLimit`) or its address space (`ulimit -v`).
    package func check(memory: (bytes: Double, isControlGroupLimit: Bool) = MemoryLimit.available(),
                       addressSpaceLimit: Double? = ProcessMemory.addressSpaceLimit()) throws(TrainingError) {
        if resident > memory.bytes {
            let lower = MemoryEstimate.remedy(parts)
            let limit = memory.isControlGroupLimit ? "the memory limit of this process's control group"
                : "this machine's memory"
            throw .invalidOption("this run needs an estimated \(MemoryEstimate.format(resident)) of memory ("
                + MemoryEstimate.describe(parts) + "), more than the \(MemoryEstimate.format(memory.bytes)) of "
                + "\(limit); \(lower)")
        }
        if let addressSpaceLimit, addressSpace > addressSpaceLimit {
            let lower = MemoryEstimate.remedy(mappedParts)
            throw .invalidOption("this run needs an estimated \(MemoryEstimate.format(addressSpace)) of address "
                + "space (" + MemoryEstimate.describe(mappedParts) + "), more than its limit of "
                + "\(MemoryEstimate.format(addressSpaceLimit)) (ulimit -v); raise the limit, or \(lower)")
        }
    }

    /// One line for `latent train --dry-run`: the estimate, its largest parts and the limits it is checked against.
    package func summary(memory: (bytes: Double, isControlGroupLimit: Bool) = MemoryLimit.available(),
                         addressSpaceLimit: Double? = ProcessMemory.addressSpaceLimit()) -> String {
        "estimated peak memory \(MemoryEstimate.format(resident)) (\(MemoryEstimate.describe(parts, count: 4))) of "
            + "\(MemoryEstimate.format(memory.bytes)) available"
            + (memory.isControlGroupLimit ? " (control group limit)" : "")
            + "; address space \(MemoryEstimate.format(addressSpace)) of "
            + (addressSpaceLimit.map { MemoryEstimate.format($0) + " (ulimit -v)" } ?? "unlimited")
    }

    /// What lowers the largest part that the options decide: the data set's own size, or the model's and the run's.
    static func remedy(_ parts: [Part]) -> String {
        let largest = parts.filter { !$0.name.hasPrefix("the process") }.max { $0.bytes < $1.bytes }
        return largest?.name.contains("data set") == true
            ? "use a smaller data set in --data (it is loaded whole, whatever --train-limit)"
            : "lower --hidden, --latent, --batch, --samples or --threads"
    }

    /// The largest `count` parts as "name size".
    static func describe(_ parts: [Part], count: Int = 3) -> String {
        parts.sorted { $0.bytes > $1.bytes }.prefix(count).map { "\($0.name) \(format($0.bytes))" }
            .joined(separator: ", ")
    }

    /// Bytes as MB below a gigabyte, else GB (decimal units).
    package static func format(_ bytes: Double) -> String {
        bytes < 1e9 ? String(format: "%.0f MB", bytes / 1e6) : String(format: "%.2f GB", bytes / 1e9)
    }
}

extension MemoryEstimate {
    /// The estimate of a new run of `options` (`latent train --dry-run`), from its data set's headers; when they
    /// cannot be read, loading the data set says why (or, if it loads, its sizes are used).
    package static func newRun(_ options: TrainingOptions) throws -> MemoryEstimate {
        try options.validate()
        if let declared = DatasetSize(directory: options.data) {
            return MemoryEstimate(options: options, data: declared)
        }
        let data = try Dataset.load(directory: options.data, expectedPixels: options.configuration.inputs)
        return MemoryEstimate(options: options, data: DatasetSize(data), loaded: true)
    }
}
