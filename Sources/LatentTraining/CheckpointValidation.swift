import LatentData
import LatentModels

// The ranges a checkpoint header's fields must lie in: those of the runs `latent train` can write, so that a damaged or
// edited header (with a valid CRC-32) is refused when it is read, never trusted by the training loop.

extension ModelConfiguration {
    /// `validate()`, the command line's own checks, for a checkpoint header: the error names `configuration.<key>`.
    func validate(checkpoint path: String) throws {
        do {
            try validate()
        } catch let .invalid(setting, requirement, value) {
            throw CheckpointError.invalidField(path: path, field: "configuration.\(setting)",
                                               problem: "\(requirement) (got \(value))")
        }
    }
}

extension TrainingState {
    /// The most epochs a header may count: every epoch takes at least one step, and `--iterations` allows at most a
    /// thousand times `TrainingOptions.lengthLimit` steps (`--epochs` at most `lengthLimit` epochs).
    package static let epochLimit = TrainingOptions.lengthLimit * 1000
    /// The most steps a header may count: `lengthLimit` epochs of the largest IDX file (2³² − 1 images) at batch 1.
    package static let stepLimit = TrainingOptions.lengthLimit * Int(UInt32.max)

    /// Checks each field on its own and against the others, as far as that needs no data: counters ≥ 0 and within
    /// the longest run, options in the ranges `latent train` accepts. The error names the field (`state.<key>`) and
    /// the file at `path`.
    package func validate(path: String) throws {
        func require(_ holds: Bool, _ key: String, _ requirement: String, _ value: Any) throws {
            guard holds else {
                throw CheckpointError.invalidField(path: path, field: "state.\(key)",
                                                   problem: "\(requirement) (got \(value))")
            }
        }
        try require((0...Self.stepLimit).contains(step), "step", "must be between 0 and \(Self.stepLimit)", step)
        try require((0...min(step, Self.epochLimit)).contains(epoch), "epoch",
                    "must be between 0 and state.step (\(step)), as every epoch takes a step", epoch)
        try require(batch >= 1, "batch", "must be at least 1", batch)
        try require(learningRate.isFinite && learningRate > 0, "learningRate", "must be a positive finite number",
                    learningRate)
        try require(threads >= 1, "threads", "must be at least 1", threads)
        if let optimizerStep {
            try require((0...step).contains(optimizerStep), "optimizerStep",
                        "must be between 0 and state.step (\(step))", optimizerStep)
        }
        if let skippedBatches {
            try require((0...step).contains(skippedBatches), "skippedBatches",
                        "must be between 0 and state.step (\(step))", skippedBatches)
        }
        if let factorizationRetries {
            try require(factorizationRetries >= 0, "factorizationRetries", "must be ≥ 0", factorizationRetries)
        }
        if let sums = epochSums {
            try require(sums.examples >= 0, "epochSums.examples", "must be ≥ 0", sums.examples)
            for (key, value) in [("rec", sums.rec), ("kl", sums.kl), ("loss", sums.loss)] {
                try require(value.isFinite, "epochSums.\(key)", "must be finite", value)
            }
        }
        if let parallelism {
            let names = Trainer.Parallelism.allCases.map(\.rawValue)
            try require(names.contains(parallelism), "parallelism", "must be one of \(names.joined(separator: ", "))",
                        parallelism)
        }
        if let trainLimit { try require(trainLimit >= 1, "trainLimit", "must be at least 1", trainLimit) }
        if let testLimit { try require(testLimit >= 1, "testLimit", "must be at least 1", testLimit) }
        if let ranks { try require(ranks >= 1, "ranks", "must be at least 1", ranks) }
        for (key, set, limit) in [("trainSet", trainSet, trainLimit), ("testSet", testSet, testLimit)] {
            guard let set else { continue }
            let most = min(Int(UInt32.max), limit ?? .max)
            try require((1...most).contains(set.count), "\(key).count", "must be between 1 and \(most)", set.count)
        }
    }

    /// Checks that `step` is where `epoch` completed epochs over `trainingImages` images at this batch size lead,
    /// the place the training loop continues from, for a checkpoint written by a run of `totalSteps` steps: inside
    /// the epoch in progress for a mid-epoch checkpoint (`epochSums`), else at the end of the last epoch, or within
    /// it only where that run ended (at its `--iterations`).
    package func validatePosition(trainingImages: Int, totalSteps: Int, path: String) throws {
        guard batch >= 1 else {
            throw CheckpointError.invalidField(path: path, field: "state.batch", problem: "must be at least 1 (got \(batch))")
        }
        let perEpoch = trainingImages / batch + (trainingImages % batch == 0 ? 0 : 1)
        let (start, overflow) = epoch.multipliedReportingOverflow(by: perEpoch)
        // The epoch's last step; a header near Int.max must be refused, not overflow.
        let (last, lastOverflow) = start.addingReportingOverflow(perEpoch - 1)
        let range: ClosedRange<Int>?
        if overflow || lastOverflow || perEpoch < 1 || epoch < 0 {
            range = nil
        } else if epochSums != nil {
            range = start...last
        } else {
            range = epoch == 0 || step < totalSteps ? start...start : (start - perEpoch + 1)...start
        }
        guard let range, range.contains(step) else {
            let bounds = range.map { $0.count == 1 ? "\($0.lowerBound)" : "between \($0.lowerBound) and \($0.upperBound)" }
                ?? "possible"
            let place = epochSums == nil ? "at the end of" : "inside the epoch after"
            throw CheckpointError.invalidField(path: path, field: "state.step",
                problem: "must be \(bounds) \(place) state.epoch \(epoch) of \(perEpoch) steps each (\(trainingImages) "
                    + "images at batch \(batch)), got \(step); or the training set changed")
        }
        if let sums = epochSums {
            let most = (step - start).multipliedReportingOverflow(by: batch)
            guard most.overflow || sums.examples <= most.partialValue else {
                throw CheckpointError.invalidField(path: path, field: "state.epochSums.examples",
                    problem: "must be at most \(most.partialValue), the examples of the epoch's \(step - start) "
                        + "steps so far (got \(sums.examples))")
            }
        }
    }
}
