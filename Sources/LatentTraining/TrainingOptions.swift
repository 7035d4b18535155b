import Foundation
import LatentCore
import LatentModels
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
    /// How the threads are used (DESIGN.md § The training step); `auto` (the faster strategy for the batch size) unless
    /// asked otherwise.
    public var parallelism: Trainer.Parallelism = .auto
    public var data = Dataset.defaultDirectory
    public var out = "runs/latest"
    public var trainLimit: Int?
    public var testLimit: Int?
    /// Also write a checkpoint every N steps within an epoch (0: only at the end of each epoch).
    public var checkpointEvery = 0
    /// What a non-finite loss or gradient does: stop with an error, or skip the batch and count it.
    public var onNonFinite: Trainer.NonFinitePolicy = .stop
    public init() {}

    /// Decodes `options.json`; keys added later default to their original behaviour.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        configuration = try c.decode(ModelConfiguration.self, forKey: .configuration)
        batch = try c.decode(Int.self, forKey: .batch)
        learningRate = try c.decode(Double.self, forKey: .learningRate)
        epochs = try c.decodeIfPresent(Int.self, forKey: .epochs)
        iterations = try c.decodeIfPresent(Int.self, forKey: .iterations)
        seed = try c.decode(UInt64.self, forKey: .seed)
        threads = try c.decode(Int.self, forKey: .threads)
        // Options written before the key existed come from runs that split the batch.
        parallelism = try c.decodeIfPresent(Trainer.Parallelism.self, forKey: .parallelism) ?? .data
        data = try c.decode(String.self, forKey: .data)
        out = try c.decode(String.self, forKey: .out)
        trainLimit = try c.decodeIfPresent(Int.self, forKey: .trainLimit)
        testLimit = try c.decodeIfPresent(Int.self, forKey: .testLimit)
        checkpointEvery = try c.decodeIfPresent(Int.self, forKey: .checkpointEvery) ?? 0
        onNonFinite = try c.decodeIfPresent(Trainer.NonFinitePolicy.self, forKey: .onNonFinite) ?? .stop
    }

    /// The options file of the run directory `directory`, which `--resume` continues from.
    public static func path(in directory: String) -> String {
        (directory as NSString).appendingPathComponent("options.json")
    }

    /// The most epochs a run may ask for (and a thousand times as many iterations): far beyond any real run, and
    /// small enough that step counts never overflow.
    package static let lengthLimit = 1_000_000

    /// A lower bound on the bytes a run's buffers take: the hidden layers' weights (encoder and decoder) with their
    /// gradients and Adam's two moments, and one step's decoder activations and gradients (batch × samples rows).
    package func minimumBytes(trainingImages: Int) -> Double {
        let widths = [configuration.inputs] + configuration.hidden
        let weights = 2 * zip(widths, widths.dropFirst()).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let rows = Double(min(batch, trainingImages)) * Double(configuration.samples)
        return Double(MemoryLayout<Float>.size) * (4 * weights + rows * 2 * Double(widths.reduce(0, +)))
    }

    public func validate() throws(ConfigurationError) {
        try configuration.validate()
        func fail(_ setting: String, _ requirement: String, _ value: Any) -> ConfigurationError {
            .invalid(setting: setting, requirement: requirement, value: "\(value)")
        }
        guard batch > 0 else { throw fail("batch", "must be at least 1", batch) }
        guard learningRate.isFinite, learningRate > 0 else {
            throw fail("learningRate", "must be a positive finite number", learningRate)
        }
        let limit = TrainingOptions.lengthLimit
        if let epochs, !(1...limit).contains(epochs) { throw fail("epochs", "must be between 1 and \(limit)", epochs) }
        if let iterations, !(1...(limit * 1000)).contains(iterations) {
            throw fail("iterations", "must be between 1 and \(limit * 1000)", iterations)
        }
        guard threads > 0 else { throw fail("threads", "must be at least 1", threads) }
        if let trainLimit, trainLimit <= 0 { throw fail("trainLimit", "must be at least 1", trainLimit) }
        if let testLimit, testLimit <= 0 { throw fail("testLimit", "must be at least 1", testLimit) }
        guard checkpointEvery >= 0 else { throw fail("checkpointEvery", "must be ≥ 0", checkpointEvery) }
    }
}

/// One line of `metrics.jsonl`: the state after an epoch (or after the last step of an `--iterations` run).
public struct EpochMetrics: Codable, Sendable {
    /// The metrics file of the run directory `directory`: one JSON object per epoch.
    public static func path(in directory: String) -> String {
        (directory as NSString).appendingPathComponent("metrics.jsonl")
    }

    public var epoch: Int
    public var step: Int
    public var trainNELBO: Double
    public var testNELBO: Double
    public var testKL: Double
    public var testRec: Double
    public var seconds: Double
    public var samplesPerSecond: Double
    public var evalSeconds: Double
    /// Batches skipped as non-finite so far (`--on-nan skip-batch`).
    public var skippedBatches: Int
    /// Cholesky factorizations retried with a raised δ so far, training and evaluation (covariance posterior only).
    public var factorizationRetries: Int?
    /// Processes that trained together (`mpirun -np`; 1 without it).
    public var ranks: Int?

    enum CodingKeys: String, CodingKey {
        case epoch
        case step
        case trainNELBO = "train_nelbo"
        case testNELBO = "test_nelbo"
        case testKL = "test_kl"
        case testRec = "test_rec"
        case seconds
        case samplesPerSecond = "samples_per_second"
        case evalSeconds = "eval_seconds"
        case skippedBatches = "skipped_batches"
        case factorizationRetries = "factorization_retries"
        case ranks
    }
}
