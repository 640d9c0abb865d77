# frozen_string_literal: true

class Group < Namespace
  def self.find_by_full_path(full_path, follow_redirects: false)
    found = Route.find_source(full_path, "Namespace", follow_redirects: follow_redirects)
    found.is_a?(Group) ? found : nil
  end
end
