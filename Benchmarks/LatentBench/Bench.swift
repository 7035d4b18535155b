import CMallocCounter
import Foundation
import LatentCore
import LatentData
import LatentModels
import LatentEvaluation
import LatentTraining

/// latent-bench: kernels, training-step throughput and efficiency, thread scaling and evaluation throughput.
/// Usage: latent-bench [--quick | --smoke] [--only SECTION,…] [--json FILE]
@main
struct Bench {
    enum Mode { case full, quick, smoke }
    static let usage = "usage: latent-bench [--quick | --smoke] [--only SECTION,…] [--json FILE]; sections: "
        + Section.allCases.map(\.rawValue).joined(separator: ", ")

    /// The benchmark's tables, each selectable with `--only` (to repeat one measurement without the whole run).
    enum Section: String, CaseIterable { case gemm, cholesky, steps, strategies, pieces, scaling, eval, estimators, distributed }

    static func main() throws {
        BLASKernel.selectForThisCPU()
        var arguments = Array(CommandLine.arguments.dropFirst())
        var mode = Mode.full
        var jsonPath: String?
        var sections = Set(Section.allCases).subtracting([.distributed])
        while let argument = arguments.first {
            arguments.removeFirst()
            switch argument {
            case "--quick": mode = .quick
            case "--smoke": mode = .smoke
            case "--json":
                guard let path = arguments.first else { fail("--json needs a file path, e.g. --json bench.json") }
                jsonPath = path
                arguments.removeFirst()
            case "--only":
                guard let list = arguments.first else { fail("--only needs a list of sections; \(usage)") }
                arguments.removeFirst()
                sections = []
                for name in list.split(separator: ",", omittingEmptySubsequences: false) {
                    guard let section = Section(rawValue: String(name)) else {
                        fail("unknown section '\(name)' in --only \(list); \(usage)")
                    }
                    sections.insert(section)
                }
            case "--help", "-h":
                print(usage)
                return
            default: fail("unknown argument \(argument); \(usage)")
            }
        }
        if let jsonPath { prepareJSONPath(jsonPath) }
        if sections.contains(.distributed) {
            guard sections == [.distributed] else { fail("run --only distributed on its own (under mpirun)") }
            guard let mpi = try OpenMPI.fromEnvironment() else {
                fail("the distributed section runs under mpirun: mpirun -np 2 latent-bench --only distributed")
            }
            var bench = BenchRunner(mode: mode, sections: sections)
            bench.distributed(mpi)
            mpi.finalize()
            if let jsonPath, mpi.rank == 0 { write(bench.rows, machine: Machine.describe(), to: jsonPath) }
            return
        }
        var bench = BenchRunner(mode: mode, sections: sections)
        bench.run()
        if let jsonPath {
            write(bench.rows, machine: Machine.describe(gemmPeakAtStart: bench.gemmPeakPerCore,
                                                        atEnd: bench.gemmPeakAtEnd), to: jsonPath)
        }
    }

    static func write(_ rows: [Row], machine: Machine, to jsonPath: String) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        struct Output: Codable { var machine: Machine; var rows: [Row] }
        do {
            try encoder.encode(Output(machine: machine, rows: rows)).write(to: URL(fileURLWithPath: jsonPath),
                                                                            options: .atomic)
        } catch {
            fail("cannot write \(jsonPath) (\(error.localizedDescription)); choose a writable path for --json")
        }
    }

    /// Makes sure `--json` can be written before the run rather than after its 13 minutes; missing parent
    /// directories are created, as for the `latent` tool's outputs.
    static func prepareJSONPath(_ path: String) {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            fail("cannot write \(path): cannot create the directory \(directory); choose a writable path for --json")
        }
        guard FileManager.default.isWritableFile(atPath: directory) else {
            fail("cannot write \(path): \(directory) is not writable; choose a writable path for --json")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            fail("cannot write \(path): it is a directory; give --json a file path, e.g. --json bench.json")
        }
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        exit(1)
    }
}

/// What `make` builds, or the end of the run with its error (threads that cannot be started).
func started<T>(_ make: () throws -> T) -> T {
    do { return try make() } catch { Bench.fail("\(error)") }
}

/// Runs every section and prints its table as it goes.
struct BenchRunner {
    let mode: Bench.Mode
    let sections: Set<Bench.Section>
    var rows: [Row] = []
    let cores = ProcessInfo.processInfo.activeProcessorCount
    /// The machine's own GEMM peak per core: the square GEMM of the kernel table (1024³) on one thread, in GFLOP/s.
    /// T threads' peak is T times it (OpenBLAS's own 2-thread GEMM reaches less, which the step's workers exceed).
    var gemmPeakPerCore: Double? { squareGEMMAtStart?.median }
    /// That GEMM's measurement in the kernel table, and the same GEMM measured again after every section
    /// (`machineDrift`).
    var squareGEMMAtStart: Measurement?
    var gemmPeakAtEnd: Double?
    /// The order of the square GEMM that stands for the machine's peak.
    var squareSize: Int { mode == .smoke ? 256 : 1024 }

    init(mode: Bench.Mode, sections: Set<Bench.Section> = Set(Bench.Section.allCases)) {
        self.mode = mode
        self.sections = sections
    }

    var repetitions: Int { mode == .full ? 7 : (mode == .quick ? 3 : 1) }
    /// Seconds one timed repetition should last.
    var repetitionSeconds: Double { mode == .full ? 0.5 : (mode == .quick ? 0.15 : 0.01) }

    /// Steps per timed repetition, from one timed call of `step` (2 in the smoke mode).
    func stepsPerRepetition(probing step: () -> Void) -> Int {
        let start = Date()
        step()
        let seconds = max(Date().timeIntervalSince(start), 1e-5)
        return mode == .smoke ? 2 : max(2, Int(repetitionSeconds / seconds))
    }

    mutating func run() {
        let machine = Machine.describe()
        print("latent-bench on \(machine.cpu), \(machine.cores) cores, \(machine.blas)")
        print("each figure: median of \(repetitions) timed repetitions after warm-up [min … max]\n")
        if sections.contains(.gemm) {
            gemmKernels()
        } else {
            // The drift table and the "of GEMM peak" column still need the machine's speed at the start.
            squareGEMMAtStart = gemmRate(rows: squareSize, inner: squareSize, columns: squareSize, threads: 1)
        }
        if sections.contains(.cholesky) { choleskyKernels() }
        if sections.contains(.steps) { trainingSteps() }
        if sections.contains(.strategies) { strategies() }
        if sections.contains(.pieces) { smallMatrixPieces() }
        if sections.contains(.scaling) { threadScaling() }
        if sections.contains(.eval) { evaluation() }
        if sections.contains(.estimators) { estimatorCosts() }
        machineDrift()
    }

    // MARK: - Kernels

    mutating func gemmKernels() {
        print("## GEMM (y = x Wᵀ through cblas_sgemm as Float.gemm issues it, in small-matrix pieces where they apply; "
            + "one thread unless noted)")
        print("| shape (rows×inner×columns) | threads | GFLOP/s |")
        print("|---|---:|---|")
        // Every distinct layer of the CS236 model, encoder 784-300-300-20 then decoder 10-300-300-784.
        let layers = [(784, 300), (300, 300), (300, 20), (10, 300), (300, 784)]
        let batches = mode == .smoke ? [100] : [32, 100, 512]
        var shapes: [(Int, Int, Int, Int)] = []
        for b in batches {
            for (inputs, outputs) in layers { shapes.append((b, inputs, outputs, 1)) }
        }
        let big = squareSize
        shapes.append((big, big, big, 1))
        if cores > 1 { shapes.append((big, big, big, cores)) }
        for (m, k, n, threads) in shapes {
            let result = gemmRate(rows: m, inner: k, columns: n, threads: threads)
            if m == big && k == big && n == big && threads == 1 { squareGEMMAtStart = result }
            print("| \(m)×\(k)×\(n) | \(threads) | \(format(result, digits: 1)) |")
            rows.append(Row(kind: "gemm", threads: threads, gflops: result.median, gflops_min: result.min,
                            gflops_max: result.max, rows_m: m, columns_n: n, inner_k: k))
        }
        print()
    }

    /// GFLOP/s of y = x Wᵀ (rows × inner times inner × columns) on `threads` OpenBLAS threads.
    func gemmRate(rows m: Int, inner k: Int, columns n: Int, threads: Int) -> Measurement {
        BLASThreads.set(threads)
        defer { BLASThreads.set(1) }
        let a = Buffer<Float>(count: m * k), w = Buffer<Float>(count: n * k), c = Buffer<Float>(count: m * n)
        for i in 0..<a.count { a[i] = Float(i % 7) * 0.1 }
        for i in 0..<w.count { w[i] = Float(i % 5) * 0.1 }
        let flops = 2.0 * Double(m * n * k)
        let calls = max(1, Int(repetitionSeconds * 20e9 / flops))
        return Measurement.rate(repetitions: repetitions, warmup: 1, work: flops * Double(calls) / 1e9) {
            for _ in 0..<calls {
                Float.gemm(.none, .transpose, rows: m, columns: n, inner: k, alpha: 1, a: a.pointer, lda: k,
                           b: w.pointer, ldb: k, beta: 0, c: c.pointer, ldc: n)
            }
        }
    }

    /// The one-thread square GEMM of the kernel table again, after every section: how far the machine's own speed
    /// moved while the benchmark ran (on a shared virtual machine it can move by a third within minutes), so that a
    /// reader knows whether figures of different sections, or of this run and another, can be compared.
    mutating func machineDrift() {
        guard let start = squareGEMMAtStart else { return }
        let big = squareSize
        let end = gemmRate(rows: big, inner: big, columns: big, threads: 1)
        gemmPeakAtEnd = end.median
        let drift = end.median / start.median - 1
        print("## Machine drift (the \(big)³ GEMM on one thread, at the start and at the end of the run)")
        print("| when | GFLOP/s |")
        print("|---|---|")
        print("| start | \(format(start, digits: 1)) |")
        print("| end | \(format(end, digits: 1)) |")
        let verdict = abs(drift) <= BenchRunner.steadyDrift
            ? "steady"
            : "the machine's speed changed while the benchmark ran. Within this run, trust the paired ratios "
                + "(efficiency, speed-ups, tensor over data); to compare samples/s with another run, rerun on a quiet "
                + "machine"
        print(String(format: "drift %+.1f %%: ", 100 * drift) + verdict)
        print()
    }

    /// The largest change of the machine's GEMM speed over a run that still counts as steady.
    static let steadyDrift = 0.05

    mutating func choleskyKernels() {
        print("## Cholesky (one thread): LAPACKE_spotrf per example, and the batched kernels eight examples at a time")
        print("| order k | kernel | µs per factorization | factorizations/s |")
        print("|---:|---|---:|---|")
        for k in [10, BatchedCholesky.crossoverOrder, 32, 64] {
            let lanes = InterleavedMatrices<Float>.lanes
            let count = mode == .smoke ? lanes : 512
            var rng = RandomStream(seed: 1)
            let a = Buffer<Float>(count: k * k)
            for i in 0..<(k * k) { a[i] = Float(rng.normal()) }
            // Σ = AAᵀ + kI is well conditioned.
            let sigma = Matrix(rows: k, columns: k, values: a.array).multiplied(by: Matrix(rows: k, columns: k, values: a.array), .none, .transpose)
            let base = Buffer<Float>(sigma.values)
            for i in 0..<k { base[i * k + i] += Float(k) }
            let work = Buffer<Float>(count: count * k * k)
            let interleaved = Buffer<Float>(count: InterleavedMatrices<Float>.capacity(order: k))
            let group = InterleavedMatrices(order: k, storage: interleaved.pointer)
            for e in 0..<count { (work.pointer + e * k * k).update(from: base.pointer, count: k * k) }
            let perExample = Measurement.rate(repetitions: repetitions, warmup: 1, work: Double(count)) {
                for e in 0..<count {
                    let m = work.pointer + e * k * k
                    m.update(from: base.pointer, count: k * k)
                    try? choleskyLower(m, order: k)
                }
            }
            // The same work as the posterior's batched path: pack Σ of eight examples, factorize, unpack L.
            let batched = Measurement.rate(repetitions: repetitions, warmup: 1, work: Double(count)) {
                for first in stride(from: 0, to: count, by: lanes) {
                    let m = work.pointer + first * k * k
                    for q in 0..<lanes { (m + q * k * k).update(from: base.pointer, count: k * k) }
                    group.pack(from: m, stride: k * k, ld: k, count: lanes)
                    _ = group.factorCholesky()
                    group.unpack(into: m, stride: k * k, ld: k, count: lanes)
                }
            }
            for (kernel, result) in [("potrf", perExample), ("batched", batched)] {
                print(String(format: "| %d | %@ | %.2f | %@ |", k, kernel, 1e6 / result.median,
                             format(result, digits: 0)))
                rows.append(Row(kind: kernel == "potrf" ? "potrf" : "batched_cholesky", latent: k, threads: 1,
                                samples_per_second: result.median, samples_per_second_min: result.min,
                                samples_per_second_max: result.max, microseconds: 1e6 / result.median))
            }
        }
        print()
    }

    // MARK: - Training step

    struct StepConfig {
        var batch: Int
        var latent: Int
        var posterior: PosteriorKind
        var samples: Int
        var threads: Int
        /// `auto` by default: what `latent train --threads` does for the batch size.
        var parallelism: Trainer.Parallelism = .auto
        /// The hidden widths; by default the CS236 model's, or a tiny one in the smoke mode.
        var hidden: [Int]? = nil
        /// The training gradient (MATH.md §10).
        var estimator: PathwiseEstimator = .standard
        /// The prior (the mixture's K = 500 components, as in `latent train`).
        var prior: PriorKind = .normal
    }

    var stepConfigs: [StepConfig] {
        var configs = [StepConfig]()
        let threadCounts = cores > 1 ? [1, cores] : [1]
        let batches = mode == .smoke ? [8] : [32, 100, 512]
        let latents = mode == .full ? [10, 32, 64] : (mode == .quick ? [10, 64] : [4])
        for threads in threadCounts {
            for batch in batches {
                for latent in latents {
                    for posterior in PosteriorKind.allCases {
                        if mode == .quick && batch != 100 && (posterior != .diagonal || latent != 10) { continue }
                        configs.append(StepConfig(batch: batch, latent: latent, posterior: posterior, samples: 1,
                                                  threads: threads))
                    }
                }
                configs.append(StepConfig(batch: batch, latent: latents[0], posterior: .diagonal,
                                          samples: mode == .smoke ? 2 : 10, threads: threads))
            }
            // The covariance family's batched path (the allocation check covers it): whole groups on every thread.
            if mode == .smoke {
                configs.append(StepConfig(batch: 16 * threads, latent: BatchedCholesky.crossoverOrder,
                                          posterior: .covariance, samples: 1, threads: threads))
            }
        }
        return configs
    }

    mutating func trainingSteps() {
        print("## Training step (CS236 model 784-300-300, ELU; synthetic images; the strategy `--threads` chooses)")
        print("| batch | k | posterior | m | threads | parallelism | samples/s | GFLOP/s | of GEMM peak | efficiency | "
              + "bytes/step | allocs/step |")
        print("|---:|---:|---|---:|---:|---|---|---:|---:|---:|---:|---:|")
        for config in stepConfigs {
            let row = measureStep(config)
            rows.append(row)
            print(String(format: "| %d | %d | %@ | %d | %d | %@ | %@ | %.1f | %.0f %% | %.2f | %.0f | %.1f |",
                         config.batch, config.latent, config.posterior.rawValue, config.samples, config.threads,
                         row.parallelism ?? "", formatRow(row), row.gflops ?? 0, 100 * (row.peak_fraction ?? 0),
                         row.efficiency ?? 0, row.bytes_allocated_per_step ?? 0, row.allocations_per_step ?? 0))
        }
        print()
    }

    // MARK: - Strategies

    /// Data against tensor parallelism on all cores for each batch size, in alternating repetitions (the speed-up is
    /// the median of the paired ratios; 9 pairs even with `--quick`, as the ratio is what `auto`'s choice rests on).
    mutating func strategies() {
        guard cores > 1 else { return }
        print("## Strategies (k = \(mode == .smoke ? 4 : 10), diagonal, \(cores) threads; tensor against data "
            + "parallelism)")
        print("| batch | data samples/s | tensor samples/s | tensor over data | tensor bytes/step | auto chooses |")
        print("|---:|---|---|---:|---:|---|")
        for batch in mode == .smoke ? [8] : [32, 100, 512] {
            let data = StepConfig(batch: batch, latent: mode == .smoke ? 4 : 10, posterior: .diagonal, samples: 1,
                                  threads: cores, parallelism: .data)
            var tensor = data
            tensor.parallelism = .tensor
            let paired = pairedSpeedup(data, tensor, pairs: mode == .smoke ? 1 : 9)
            let tensorRow = measureStep(tensor)
            let dataRate = paired.rate.median / paired.speedup
            for (config, rate) in [(data, dataRate), (tensor, paired.rate.median)] {
                rows.append(Row(kind: "strategy", batch: batch, latent: config.latent, posterior: "diagonal",
                                samples: 1, threads: cores, parallelism: config.parallelism.rawValue,
                                samples_per_second: rate,
                                bytes_allocated_per_step: config.parallelism == .tensor
                                    ? tensorRow.bytes_allocated_per_step : nil,
                                speedup: config.parallelism == .tensor ? paired.speedup : 1))
            }
            print(String(format: "| %d | %.0f | %@ | %.2f× | %.0f | %@ |", batch, dataRate, format(paired.rate, digits: 0),
                         paired.speedup, tensorRow.bytes_allocated_per_step ?? 0,
                         Trainer.Parallelism.auto.resolved(batchSize: batch, threads: cores).rawValue))
        }
        print()
    }

    /// The step with each GEMM in the column pieces that take OpenBLAS's small-matrix kernels (`SmallMatrixPieces`,
    /// what the engine does) against one call per GEMM, in alternating repetitions of one trainer. The smoke mode
    /// runs batch 32 of the full model too (a tiny model's GEMMs are small enough whole), so that the test suite
    /// sees the pieces' steps allocate nothing.
    mutating func smallMatrixPieces() {
        guard SmallMatrixPieces.applies else {
            print("## Small-matrix pieces: not used with the \(BLASKernel.current) kernel\n")
            return
        }
        print("## Small-matrix pieces (CS236 model, k = 10, diagonal, the strategy `--threads` chooses; GEMMs in "
            + "small-kernel pieces against one call each)")
        print("| batch | threads | parallelism | samples/s with pieces | with pieces over one call each | bytes/step |")
        print("|---:|---:|---|---|---:|---:|")
        for batch in mode == .smoke ? [32] : [32, 100, 512] {
            for threads in cores > 1 ? [1, cores] : [1] {
                let config = StepConfig(batch: batch, latent: 10, posterior: .diagonal, samples: 1, threads: threads,
                                        hidden: [300, 300])
                let trainer = makeTrainer(config)
                trainer.beginEpoch(0)
                var batchIndex = 0
                func steps(_ count: Int, pieces: Bool) {
                    SmallMatrixPieces.isEnabled = pieces
                    for _ in 0..<count {
                        _ = try? trainer.trainStep(batch: batchIndex)
                        batchIndex = (batchIndex + 1) % trainer.stepsPerEpoch
                    }
                }
                defer { SmallMatrixPieces.isEnabled = true }
                steps(3, pieces: false)
                steps(3, pieces: true)
                let count = stepsPerRepetition { steps(1, pieces: true) }
                let allocationsBefore = latent_allocation_count(), bytesBefore = latent_allocated_bytes()
                steps(count, pieces: true)
                let allocations = Double(latent_allocation_count() - allocationsBefore) / Double(count)
                let bytes = Double(latent_allocated_bytes() - bytesBefore) / Double(count)
                // 9 pairs in full, 5 with `--quick` (which must finish within 2 minutes): batch 32's 1.1–1.2× stands
                // well above the pairs' spread.
                let paired = Measurement.paired(repetitions: mode == .smoke ? 1 : (mode == .quick ? 5 : 9),
                                                work: Double(count * batch),
                                                measured: { steps(count, pieces: true) },
                                                reference: { steps(count, pieces: false) })
                print(String(format: "| %d | %d | %@ | %@ | %.2f× | %.0f |", batch, threads,
                             trainer.parallelism.rawValue, format(paired.rate, digits: 0), paired.ratio, bytes))
                rows.append(Row(kind: "small_matrix_pieces", batch: batch, latent: config.latent,
                                posterior: "diagonal", samples: 1, threads: threads,
                                parallelism: trainer.parallelism.rawValue, samples_per_second: paired.rate.median,
                                samples_per_second_min: paired.rate.min, samples_per_second_max: paired.rate.max,
                                bytes_allocated_per_step: bytes, allocations_per_step: allocations,
                                speedup: paired.ratio))
            }
        }
        print()
    }

    func syntheticImages(count: Int) -> ImageSet {
        var rng = RandomStream(seed: 42)
        var pixels = [UInt8](repeating: 0, count: count * 784)
        for i in 0..<pixels.count { pixels[i] = rng.uniform() < 0.5 ? 0 : UInt8(truncatingIfNeeded: rng.next() & 0xFF) }
        return ImageSet(count: count, rows: 28, columns: 28, pixels: pixels)
    }

    func makeTrainer(_ config: StepConfig, pool: WorkerPool? = nil, communicator: (any Communicator)? = nil) -> Trainer {
        // The smoke mode (run by the test suite in a debug build) checks that every row works on a tiny model, whose
        // 32 hidden units (K ≥ 32) still reach OpenBLAS's mallocing NN kernel for dz at k = 4, which the release
        // test's zero-allocation check would see.
        let kind: ModelKind = config.samples > 1 || config.estimator == .dreg ? .iwae
            : (config.prior == .mixture ? .gmvae : .vae)
        let configuration = ModelConfiguration(model: kind, posterior: config.posterior,
                                               hidden: config.hidden ?? (mode == .smoke ? [32] : [300, 300]),
                                               latent: config.latent, samples: config.samples, prior: config.prior,
                                               components: mode == .smoke ? 8 : 500, estimator: config.estimator)
        let model = VariationalAutoencoder<Float>(configuration)
        model.initialize(seed: 0)
        return started { try Trainer(model: model, images: syntheticImages(count: max(config.batch * 8, 1024)),
                       batchSize: config.batch, learningRate: 1e-3, seed: 0, threads: config.threads,
                       parallelism: config.parallelism, pool: pool, communicator: communicator) }
    }

    func measureStep(_ config: StepConfig, competing: Bool = false) -> Row {
        let trainer = makeTrainer(config)
        trainer.beginEpoch(0)
        var batch = 0
        func step() {
            _ = try? trainer.trainStep(batch: batch)
            batch = (batch + 1) % trainer.stepsPerEpoch
        }
        for _ in 0..<3 { step() }
        let steps = stepsPerRepetition(probing: step)
        let allocationsBefore = latent_allocation_count(), bytesBefore = latent_allocated_bytes()
        for _ in 0..<steps { step() }
        let allocations = Double(latent_allocation_count() - allocationsBefore) / Double(steps)
        let bytes = Double(latent_allocated_bytes() - bytesBefore) / Double(steps)
        // Step and GEMM replay alternate repetition by repetition; the efficiency is the median of the paired ratios.
        let replay = GEMMReplay(trainer: trainer)
        for _ in 0..<2 { replay.run() }
        let (result, efficiency) = Measurement.paired(
            repetitions: repetitions, work: Double(steps * config.batch),
            measured: { for _ in 0..<steps { step() } }, reference: { for _ in 0..<steps { replay.run() } })
        // Tensor parallelism's GEMMs also without the stages' barriers (JSON only): the GEMM work alone.
        let unsynchronized = !replay.runsInStages ? nil : Measurement.paired(
            repetitions: repetitions, work: Double(steps * config.batch),
            measured: { for _ in 0..<steps { step() } },
            reference: { for _ in 0..<steps { replay.run(synchronized: false) } }).ratio
        let flopsPerSample = trainer.model.trainingFLOPs(rows: 1, samples: config.samples)
        let peak = gemmPeakPerCore.map { $0 * Double(config.threads) }
        return Row(kind: "train_step", batch: config.batch, latent: config.latent, posterior: config.posterior.rawValue,
                   samples: config.samples, threads: config.threads, parallelism: trainer.parallelism.rawValue,
                   competing_process: competing, samples_per_second: result.median,
                   samples_per_second_min: result.min, samples_per_second_max: result.max,
                   gflops: result.median * flopsPerSample / 1e9, gflops_min: result.min * flopsPerSample / 1e9,
                   gflops_max: result.max * flopsPerSample / 1e9,
                   peak_fraction: peak.map { result.median * flopsPerSample / 1e9 / $0 },
                   efficiency: efficiency, efficiency_unsynchronized: unsynchronized,
                   bytes_allocated_per_step: bytes, allocations_per_step: allocations)
    }

    // MARK: - Thread scaling

    mutating func threadScaling() {
        // Bytes per step are shown here too: with `blas` on several threads, OpenBLAS's threaded GEMM driver mallocs
        // its job array on every call (level3_thread.c, USE_ALLOC_HEAP), outside this engine's control.
        // The GEMMs alone (GEMMReplay, paired the same way) bound the speed-up: the step scales no better than the
        // GEMMs that are most of it, unless its other work scales better than they do.
        // For tensor parallelism, also its GEMMs with each worker running its tasks back to back, never waiting for
        // the other: what two cores give this division of the work on this machine, without lockstep.
        let base = StepConfig(batch: mode == .smoke ? 8 : 100, latent: mode == .smoke ? 4 : 10, posterior: .diagonal,
                              samples: 1, threads: 1)
        print("## Thread scaling (batch \(base.batch), k = \(base.latent), diagonal)")
        print("| parallelism | threads | competing process | samples/s | speed-up over 1 thread (quiet) | "
            + "GEMMs alone | GEMMs alone, no barriers | bytes/step |")
        print("|---|---:|---|---|---:|---:|---:|---:|")
        let single = measureStep(base)
        for competing in [false, true] {
            let busy = competing ? BusyLoop() : nil
            for parallelism in [Trainer.Parallelism.reference, .data, .tensor, .blas] {
                for threads in 1...cores {
                    // On one thread every strategy is the reference step.
                    if (threads == 1) != (parallelism == .reference) { continue }
                    var config = base
                    config.threads = threads
                    config.parallelism = parallelism
                    var row = threads == 1 && !competing ? single : measureStep(config, competing: competing)
                    row.kind = "scaling"
                    row.competing_process = competing
                    row.speedup = (row.samples_per_second ?? 0) / (single.samples_per_second ?? 1)
                    if !competing && threads > 1 {
                        // Quiet rows: one thread and T threads alternate repetition by repetition, and the speed-up
                        // is the median of the paired ratios, so the machine's drift cancels.
                        let paired = pairedSpeedup(base, config, pairs: scalingPairs, gemms: true)
                        row.samples_per_second = paired.rate.median
                        row.samples_per_second_min = paired.rate.min
                        row.samples_per_second_max = paired.rate.max
                        row.speedup = paired.speedup
                        row.gemm_speedup = paired.gemmSpeedup
                        row.gemm_speedup_unsynchronized = paired.unsynchronizedSpeedup
                    }
                    rows.append(row)
                    func times(_ x: Double?) -> String { x.map { String(format: "%.2f×", $0) } ?? "" }
                    print(String(format: "| %@ | %d | %@ | %@ | %.2f× | %@ | %@ | %.0f |", parallelism.rawValue,
                                 threads, competing ? "yes" : "no", formatRow(row), row.speedup ?? 0,
                                 times(row.gemm_speedup), times(row.gemm_speedup_unsynchronized),
                                 row.bytes_allocated_per_step ?? 0))
                }
            }
            if !competing && cores > 1 { rows.append(independentCopies(base)) }
            busy?.stop()
        }
        print()
    }

    /// The machine's own ceiling for the scaling rows: `cores` independent one-thread trainers (each its own model,
    /// data and BLAS calls, nothing shared) run at once, against one of them alone, in alternating repetitions of the
    /// same total work. A step split over the cores can approach this figure but has no reason to pass it.
    func independentCopies(_ base: StepConfig) -> Row {
        // Copy 0 runs alone; copies 1...cores run at once, one per pool thread, each advancing its own batch index.
        let copies = (0...cores).map { _ in makeTrainer(base) }
        let pool = started { try WorkerPool(size: cores) }
        let batches = UnsafeMutablePointer<Int>.allocate(capacity: copies.count)
        batches.initialize(repeating: 0, count: copies.count)
        defer { batches.deallocate() }
        func steps(_ copy: Int, _ count: Int) {
            for _ in 0..<count {
                _ = try? copies[copy].trainStep(batch: batches[copy])
                batches[copy] = (batches[copy] + 1) % copies[copy].stepsPerEpoch
            }
        }
        for copy in copies { copy.beginEpoch(0) }
        steps(0, 3)
        pool.run { steps(1 + $0, 3) }
        let count = stepsPerRepetition { steps(0, 1) }
        let paired = Measurement.paired(repetitions: scalingPairs, work: Double(cores * count * base.batch),
                                        measured: { pool.run { steps(1 + $0, count) } },
                                        reference: { steps(0, cores * count) })
        let row = Row(kind: "scaling", batch: base.batch, latent: base.latent, posterior: base.posterior.rawValue,
                      samples: base.samples, threads: cores, parallelism: "independent", competing_process: false,
                      samples_per_second: paired.rate.median, samples_per_second_min: paired.rate.min,
                      samples_per_second_max: paired.rate.max, speedup: paired.ratio)
        print(String(format: "| independent (%d one-thread trainers) | %d | no | %@ | %.2f× |  |  |  |", cores, cores,
                     formatRow(row), paired.ratio))
        return row
    }

    /// Pairs behind a quiet thread-scaling speed-up: at least 9 even with `--quick`, as the strategies table has,
    /// since on a shared machine 3 pairs' median moved by a fifth between runs (1.36–1.71× at batch 100).
    var scalingPairs: Int { mode == .smoke ? 1 : max(repetitions, 9) }

    /// Samples/s of `config` and its speed-up over `base` (one thread), timed in alternating repetitions (`pairs` of
    /// them; the mode's repetition count by default); with `gemms`, also the speed-up of the two steps' GEMMs alone
    /// (`GEMMReplay`), paired the same way, and for tensor parallelism that of its GEMMs without the stages' barriers.
    func pairedSpeedup(_ base: StepConfig, _ config: StepConfig, pairs: Int? = nil, gemms: Bool = false)
        -> (rate: Measurement, speedup: Double, gemmSpeedup: Double?, unsynchronizedSpeedup: Double?) {
        // Trainers with the same worker count share one pool (a trainer ignores a pool of another size): a second
        // pool's idle threads, still spinning from the previous repetition, would take the cores from the one timed.
        let one = makeTrainer(base)
        let many = makeTrainer(config, pool: one.pool)
        var batches = [0, 0]
        func steps(_ trainer: Trainer, _ slot: Int, _ count: Int) {
            for _ in 0..<count {
                _ = try? trainer.trainStep(batch: batches[slot])
                batches[slot] = (batches[slot] + 1) % trainer.stepsPerEpoch
            }
        }
        one.beginEpoch(0)
        many.beginEpoch(0)
        steps(one, 0, 3)
        steps(many, 1, 3)
        let count = stepsPerRepetition { steps(one, 0, 1) }
        func pair(_ measured: () -> Void, against reference: () -> Void) -> (rate: Measurement, ratio: Double) {
            Measurement.paired(repetitions: pairs ?? repetitions, work: Double(count * config.batch),
                               measured: { for _ in 0..<count { measured() } },
                               reference: { for _ in 0..<count { reference() } })
        }
        let paired = pair({ steps(many, 1, 1) }, against: { steps(one, 0, 1) })
        guard gemms else { return (paired.rate, paired.ratio, nil, nil) }
        let replays = (GEMMReplay(trainer: one), GEMMReplay(trainer: many))
        for _ in 0..<2 { replays.0.run(); replays.1.run() }
        let products = pair({ replays.1.run() }, against: { replays.0.run() })
        guard replays.1.runsInStages else { return (paired.rate, paired.ratio, products.ratio, nil) }
        let unsynchronized = pair({ replays.1.run(synchronized: false) }, against: { replays.0.run() })
        return (paired.rate, paired.ratio, products.ratio, unsynchronized.ratio)
    }

    // MARK: - Evaluation

    mutating func evaluation() {
        let model = VariationalAutoencoder<Float>(ModelConfiguration(hidden: mode == .smoke ? [16] : [300, 300]))
        model.initialize(seed: 0)
        let examples = mode == .smoke ? 4 : 40
        let m = mode == .smoke ? 5 : 1000
        print("## Evaluation (IWAE-\(m) bound, streamed; all cores)")
        print("| m | examples | decoder samples/s |")
        print("|---:|---:|---|")
        let images = syntheticImages(count: examples)
        let binarized = Binarization.staticBinarized(images, seed: 0, as: Float.self)
        let evaluator = started { try ImportanceBoundEvaluator(model: model, threads: cores) }
        let result = Measurement.rate(repetitions: repetitions, warmup: 1, work: Double(examples * m)) {
            _ = try? evaluator.evaluate(binarized: binarized, count: examples, sampleCounts: [m])
        }
        print("| \(m) | \(examples) | \(format(result, digits: 0)) |")
        rows.append(Row(kind: "eval_iwae", name: "IWAE-\(m)", samples: m, threads: cores,
                        samples_per_second: result.median, samples_per_second_min: result.min,
                        samples_per_second_max: result.max))
        print()
    }

    func format(_ m: Measurement, digits: Int) -> String {
        let f = "%.\(digits)f"
        return String(format: "\(f) [\(f) … \(f)]", m.median, m.min, m.max)
    }

    func formatRow(_ row: Row) -> String {
        String(format: "%.0f [%.0f … %.0f]", row.samples_per_second ?? 0, row.samples_per_second_min ?? 0,
               row.samples_per_second_max ?? 0)
    }
}

/// A competing process: a shell busy loop on the machine, started and stopped by the benchmark itself.
final class BusyLoop {
    let process = Process()
    init() {
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "while :; do :; done"]
        try? process.run()
        usleep(100_000)
    }
    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}
