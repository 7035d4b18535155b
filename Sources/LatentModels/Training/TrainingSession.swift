import Foundation
import LatentCore
import LatentData

/// Everything `latent train` is asked to do.
public struct TrainingOptions: Codable, Sendable {
    public var configuration = ModelConfiguration()
    public var batch = 100
    public var learningRate = 1e-3
    public var epochs: Int? = 20
    public var iterations: Int?
    public var seed: UInt64 = 0
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// How the threads are used (DESIGN.md § Multicore); data parallelism unless asked otherwise.
    public var parallelism: Trainer.Parallelism = .data
    public var data = Dataset.defaultDirectory
    public var out = "runs/latest"
    public var trainLimit: Int?
    public var testLimit: Int?
    public init() {}

    public func validate() throws {
        try configuration.validate()
        func fail(_ s: String) -> TrainingError { .invalidOption(s) }
        guard batch > 0 else { throw fail("--batch must be at least 1 (got \(batch))") }
        guard learningRate.isFinite, learningRate > 0 else {
            throw fail("--lr must be a positive finite number (got \(learningRate))")
        }
        if let epochs, epochs <= 0 { throw fail("--epochs must be at least 1 (got \(epochs))") }
        if let iterations, iterations <= 0 { throw fail("--iterations must be at least 1 (got \(iterations))") }
        guard threads > 0 else { throw fail("--threads must be at least 1 (got \(threads))") }
        if let trainLimit, trainLimit <= 0 { throw fail("--train-limit must be at least 1 (got \(trainLimit))") }
        if let testLimit, testLimit <= 0 { throw fail("--test-limit must be at least 1 (got \(testLimit))") }
    }
}

/// One line of `metrics.jsonl`: the state after an epoch (or after the last step of an `--iterations` run).
public struct EpochMetrics: Codable, Sendable {
    public var epoch: Int
    public var step: Int
    public var train_nelbo: Double
    public var test_nelbo: Double
    public var test_kl: Double
    public var test_rec: Double
    public var seconds: Double
    public var samples_per_second: Double
    public var eval_seconds: Double
}

/// Live progress for the command line to render.
public struct TrainingProgress: Sendable {
    public var epoch: Int
    public var epochs: Int
    public var step: Int
    public var totalSteps: Int
    public var runningNELBO: Double
    public var samplesPerSecond: Double
    public var etaSeconds: Double
}

/// Runs a whole training job: data, model, epochs, per-epoch test evaluation, metrics and atomic checkpoints.
public final class TrainingSession {
    public let options: TrainingOptions
    public let dataset: Dataset
    public let model: VariationalAutoencoder<Float>
    public let trainer: Trainer
    public let evaluator: Evaluator
    public let testBinarized: [Float]
    public let testCount: Int
    public private(set) var history: [EpochMetrics] = []

    /// Seed of the static test binarization (fixed, independent of the training seed).
    public static let testBinarizationSeed: UInt64 = 0

    public init(options: TrainingOptions, dataset: Dataset? = nil) throws {
        try options.validate()
        self.options = options
        var data = try dataset ?? Dataset.load(directory: options.data, expectedPixels: options.configuration.inputs)
        guard data.train.pixelsPerImage == options.configuration.inputs else {
            throw DataError.wrongImageSize(path: options.data, rows: data.train.rows, columns: data.train.columns,
                                           expected: options.configuration.inputs)
        }
        data.train = data.train.prefix(options.trainLimit)
        data.test = data.test.prefix(options.testLimit)
        guard data.train.count > 0 else { throw DataError.empty(path: options.data + " (training images)") }
        guard data.test.count > 0 else { throw DataError.empty(path: options.data + " (test images)") }
        self.dataset = data
        model = VariationalAutoencoder<Float>(options.configuration)
        model.initialize(seed: options.seed)
        trainer = Trainer(model: model, images: data.train, batchSize: options.batch,
                          learningRate: options.learningRate, seed: options.seed, threads: options.threads,
                          parallelism: options.parallelism)
        evaluator = Evaluator(model: model, threads: options.threads,
                              pool: options.parallelism == .data ? trainer.pool : nil)
        testCount = data.test.count
        testBinarized = Binarization.staticBinarized(data.test, seed: TrainingSession.testBinarizationSeed)
        try prepareOutputDirectory()
    }

    /// Total steps of the run.
    public var totalSteps: Int {
        if let iterations = options.iterations { return iterations }
        return (options.epochs ?? 20) * trainer.stepsPerEpoch
    }

    /// Trains to the end, writing `metrics.jsonl` and `checkpoint` into `options.out` after every epoch.
    public func run(progress: (TrainingProgress) -> Void = { _ in }) throws -> EpochMetrics {
        let metricsPath = (options.out as NSString).appendingPathComponent("metrics.jsonl")
        FileManager.default.createFile(atPath: metricsPath, contents: nil)
        try writeOptions()
        let total = totalSteps
        let epochs = (total + trainer.stepsPerEpoch - 1) / trainer.stepsPerEpoch
        let runStart = Date()
        var last: EpochMetrics?
        var epoch = 0
        while trainer.step < total {
            trainer.beginEpoch(epoch)
            let epochStart = Date()
            var sums = TermSums()
            var lastReport = Date.distantPast
            var batch = 0
            while batch < trainer.stepsPerEpoch && trainer.step < total {
                sums = sums + (try trainer.trainStep(batch: batch))
                batch += 1
                let now = Date()
                if now.timeIntervalSince(lastReport) >= 0.5 || trainer.step == total {
                    lastReport = now
                    let rate = Double(sums.examples) / max(now.timeIntervalSince(epochStart), 1e-9)
                    let elapsed = now.timeIntervalSince(runStart)
                    let eta = elapsed / Double(trainer.step) * Double(total - trainer.step)
                    progress(TrainingProgress(epoch: epoch + 1, epochs: epochs, step: trainer.step, totalSteps: total,
                                              runningNELBO: sums.nelbo / Double(sums.examples),
                                              samplesPerSecond: rate, etaSeconds: eta))
                }
            }
            let seconds = Date().timeIntervalSince(epochStart)
            let evalStart = Date()
            let test = evaluator.evaluate(binarized: testBinarized, count: testCount)
            let evalSeconds = Date().timeIntervalSince(evalStart)
            guard test.nelbo.isFinite else { throw TrainingError.nonFinite(step: trainer.step, term: "test NELBO") }
            let metrics = EpochMetrics(
                epoch: epoch + 1, step: trainer.step, train_nelbo: sums.nelbo / Double(max(1, sums.examples)),
                test_nelbo: test.nelbo / Double(test.examples), test_kl: test.kl / Double(test.examples),
                test_rec: test.rec / Double(test.examples), seconds: seconds,
                samples_per_second: Double(sums.examples) / seconds, eval_seconds: evalSeconds)
            history.append(metrics)
            try appendLine(metrics, to: metricsPath)
            try saveCheckpoint(epoch: epoch + 1)
            last = metrics
            epoch += 1
        }
        return last!
    }

    func prepareOutputDirectory() throws {
        do {
            try FileManager.default.createDirectory(atPath: options.out, withIntermediateDirectories: true)
        } catch {
            throw CheckpointError.unwritable(path: options.out, reason: "cannot create the directory")
        }
        guard FileManager.default.isWritableFile(atPath: options.out) else {
            throw CheckpointError.unwritable(path: options.out, reason: "permission denied")
        }
    }

    func writeOptions() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let path = (options.out as NSString).appendingPathComponent("options.json")
        guard FileManager.default.createFile(atPath: path, contents: try encoder.encode(options)) else {
            throw CheckpointError.unwritable(path: path, reason: "cannot create the file")
        }
    }

    func appendLine(_ metrics: EpochMetrics, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var line = try encoder.encode(metrics)
        line.append(0x0A)
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw CheckpointError.unwritable(path: path, reason: "cannot open for appending")
        }
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: line)
    }

    public func saveCheckpoint(epoch: Int) throws {
        let state = TrainingState(seed: options.seed, step: trainer.step, epoch: epoch, batch: options.batch,
                                  learningRate: options.learningRate, threads: options.threads, data: options.data)
        try model.checkpoint(adam: trainer.adam, state: state).save(to: options.out)
    }
}
