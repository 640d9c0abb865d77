# frozen_string_literal: true

# Groups and user namespaces (single-table inheritance, as in GitLab). `cell` is the cell that
# owns the top-level namespace, what the Topology Service would answer.
class Namespace < ApplicationRecord
  belongs_to :parent, class_name: "Namespace", optional: true

  def root
    parent ? parent.root : self
  end
end
