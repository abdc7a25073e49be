/// ZeroQuant's distilled weights as a preparation: the block tensors LKD trained replace
/// the source's, and the converter then quantizes them with the same group layout the
/// training used, so the file holds exactly the weights the distillation ended with.
public struct DistilledWeights: ModelPreparation {
    public let result: LayerwiseDistillation.Result
    public let options: LayerwiseDistillation.Options

    public init(result: LayerwiseDistillation.Result, options: LayerwiseDistillation.Options) {
        self.result = result; self.options = options
    }

    public func changes(_ name: String) -> Bool { result.values(of: name) != nil }
    public func transform(_ name: String, _ values: [Float]) -> [Float] { result.values(of: name) ?? values }
    public var extraTensors: [ExtraTensor] { [] }
    public var parameters: [(String, JSONValue)] {
        [("lkd_steps", JSONValue(options.steps)), ("lkd_lr", .double(options.effectiveLearningRate)),
         ("lkd_batch", JSONValue(options.batchSize)),
         ("lkd_mse_before", .array(result.reports.map { .double($0.mseBefore) })),
         ("lkd_mse_after", .array(result.reports.map { .double($0.mseAfter) }))]
    }
}
