extension Array {
    /// The last element satisfying `isBefore`, by binary search. `isBefore` must hold for a prefix
    /// of the array and fail for the rest (true for index entries, which are sorted).
    func lastWhere(_ isBefore: (Element) -> Bool) -> Element? {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if isBefore(self[mid]) { lo = mid + 1 } else { hi = mid }
        }
        return lo == 0 ? nil : self[lo - 1]
    }
}
