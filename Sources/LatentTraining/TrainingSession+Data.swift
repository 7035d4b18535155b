import LatentData

extension TrainingSession {
    /// Refuses to resume on other images than the checkpoint's: each recorded fingerprint (nil: not recorded) must be
    /// that of the images this session loaded, after the run's limits.
    func verifyData(trainSet: ImageSetFingerprint?, testSet: ImageSetFingerprint?, checkpoint path: String) throws {
        for (split, recorded, found) in [("training", trainSet, fingerprints.train), ("test", testSet, fingerprints.test)] {
            guard let recorded, recorded != found else { continue }
            throw CheckpointError.dataChanged(path: path, split: split, data: options.data, recorded: recorded,
                                              found: found)
        }
    }
}
