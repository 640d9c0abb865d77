# frozen_string_literal: true

# Small statistics the benchmark scripts share.
module Stats
  module_function

  # The middle value of `values` (the mean of the two middle ones for an even count).
  def median(values)
    sorted = values.sort
    mid = sorted.size / 2
    sorted.size.odd? ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2.0
  end
end
