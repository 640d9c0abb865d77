# frozen_string_literal: true

# The fixed ownership table of the fault-load and soak runs: which cell owns which top-level
# namespace. The counting cells' learn endpoint answers from it (benches/faults/cell.ru), and the
# scripts judge misrouting with it (an id recorded by a cell that does not own its namespace).
module Faults
  CELLS = %w[cell_0 cell_1 cell_2].freeze

  # Namespaces with a named owner (fault-load traffic and the soak's hot paths).
  NAMESPACES = {
    "red" => "cell_0", "orange" => "cell_0", "yellow" => "cell_0",
    "green" => "cell_1", "blue" => "cell_1", "indigo" => "cell_1",
    "violet" => "cell_2", "black" => "cell_2", "white" => "cell_2"
  }.freeze

  # The soak's long tail: `tail-<n>` belongs to cell_<n mod 3>.
  TAIL = /\Atail-(\d{1,9})\z/

  module_function

  # @param namespace [String] a top-level namespace, e.g. "red" or "tail-17"
  # @return [String, nil] the owning cell, nil for a namespace no cell claims
  def owner(namespace)
    return NAMESPACES[namespace] if NAMESPACES.key?(namespace)

    m = TAIL.match(namespace)
    m && CELLS[m[1].to_i % CELLS.size]
  end

  # The top-level namespace a request path belongs to: the first segment, or the second under
  # `/groups/`. nil for paths outside any namespace.
  #
  # @param path [String] e.g. "/red/p3/-/issues/7" or "/groups/red/-/issues"
  # @return [String, nil]
  def namespace_of(path)
    segments = path.split("?", 2).first.split("/")
    ns = segments[1] == "groups" ? segments[2] : segments[1]
    ns.nil? || ns.empty? ? nil : ns
  end

  # @return [String, nil] the cell that owns the path's namespace
  def owner_of_path(path)
    ns = namespace_of(path)
    ns && owner(ns)
  end
end
