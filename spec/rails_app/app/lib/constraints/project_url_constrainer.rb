# frozen_string_literal: true

module Constraints
  # GitLab's ProjectUrlConstrainer: the route holds only for a project that exists.
  class ProjectUrlConstrainer
    def matches?(request)
      namespace_path = request.params[:namespace_id]
      project_path = request.params[:project_id] || request.params[:id]
      full_path = [namespace_path, project_path].join("/")
      return false unless PathRegex.full_project_path_regex.match?("#{full_path}/")

      Project.find_by_full_path(full_path, follow_redirects: request.get?).present?
    end
  end
end
