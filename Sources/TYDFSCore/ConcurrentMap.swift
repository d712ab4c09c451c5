extension Array where Element: Sendable {
    /// `transform` of every element, all run at once (as child tasks); the results in the
    /// elements' order. For the items of a batch, which must not wait for one another.
    public func concurrentMap<Transformed: Sendable>(
        _ transform: @escaping @Sendable (Element) async -> Transformed
    ) async -> [Transformed] {
        await withTaskGroup(of: (Int, Transformed).self) { group in
            for (index, element) in enumerated() {
                group.addTask { (index, await transform(element)) }
            }
            var results = [Transformed?](repeating: nil, count: count)
            for await (index, result) in group { results[index] = result }
            return results.map { $0! }
        }
    }
}
