# frozen_string_literal: true

# The full path of a group, user namespace or project (GitLab's `routes` table).
class Route < ApplicationRecord
  belongs_to :source, polymorphic: true

  # GitLab's Routable.find_by_full_path: case-insensitive; old paths followed when asked (GET only).
  #
  # @param source_type [String] "Namespace" or "Project"
  # @return [ApplicationRecord, nil]
  def self.find_source(full_path, source_type, follow_redirects: false)
    return nil if full_path.blank?

    route = where(source_type: source_type).find_by("LOWER(path) = LOWER(?)", full_path)
    route ||= RedirectRoute.where(source_type: source_type).find_by("LOWER(path) = LOWER(?)", full_path) if follow_redirects
    route&.source
  end
end
