# frozen_string_literal: true

# The cell of a routable entity: the `cell` of its top-level namespace (the Topology Service's
# answer, kept here in the application's own database); nil when no row claims it.
module CellResolver
  def self.call(entity)
    return nil unless entity.kind == :route_path

    top = entity.key.split("/").first
    Route.where(source_type: "Namespace").find_by("LOWER(path) = LOWER(?)", top)&.source&.cell
  end
end
