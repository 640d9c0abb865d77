# frozen_string_literal: true

require "grape"

# The GitLab REST API routes behind router/tests/data/gitlab_api_urls.txt, declared as GitLab's
# own `lib/api/*.rb` declare them (grape 1.6): `version "v4", using: :path`, `prefix :api`, the
# `requirements:` constants GitLab uses so that an id or a file path or a branch name is one
# segment holding its `%2F` (`NAMESPACE_OR_PROJECT_REQUIREMENTS`, `NO_SLASH_URL_PART_REGEX`),
# globs where GitLab has them (npm package names, maven paths, generic package versions).
# spec/router_api_urls_spec.rb extracts them with {Gitlab::Cells::Learn::GrapeRoutes} into the
# route table its Puma cells classify with, so that the gem's classifier and the GitLab rules
# (`/api/:version/projects/:id` ...) decide each URL's owner as a GitLab cell would.
module GitlabDocumentedApi
  NO_SLASH_URL_PART_REGEX = %r{[^/]+}
  NAMESPACE_OR_PROJECT_REQUIREMENTS = { id: NO_SLASH_URL_PART_REGEX }.freeze
  FILE_ENDPOINT_REQUIREMENTS = NAMESPACE_OR_PROJECT_REQUIREMENTS.merge(file_path: NO_SLASH_URL_PART_REGEX).freeze
  BRANCH_ENDPOINT_REQUIREMENTS = NAMESPACE_OR_PROJECT_REQUIREMENTS.merge(branch: NO_SLASH_URL_PART_REGEX).freeze
  TAG_ENDPOINT_REQUIREMENTS = NAMESPACE_OR_PROJECT_REQUIREMENTS.merge(tag_name: NO_SLASH_URL_PART_REGEX).freeze
  COMMIT_ENDPOINT_REQUIREMENTS = NAMESPACE_OR_PROJECT_REQUIREMENTS.merge(sha: NO_SLASH_URL_PART_REGEX).freeze
  CONAN_NAME = /[a-zA-Z0-9_][a-zA-Z0-9_+.-]{1,49}/
  CONAN_RECIPE = NAMESPACE_OR_PROJECT_REQUIREMENTS.merge(package_name: CONAN_NAME, package_version: CONAN_NAME,
                                                         package_username: CONAN_NAME, package_channel: CONAN_NAME).freeze

  module_function

  # @return [Class] a new Grape::API subclass (its endpoints are never called: only routed)
  def build
    Class.new(Grape::API) do
      version "v4", using: :path
      prefix :api
      format :json

      get("/version") { {} }

      resource :projects, requirements: NAMESPACE_OR_PROJECT_REQUIREMENTS do
        get { [] }
        get(":id") { {} }
        put(":id") { {} }
        get(":id/repository/files/:file_path/raw", requirements: FILE_ENDPOINT_REQUIREMENTS) { {} }
        get(":id/repository/files/:file_path", requirements: FILE_ENDPOINT_REQUIREMENTS) { {} }
        head(":id/repository/files/:file_path", requirements: FILE_ENDPOINT_REQUIREMENTS) { {} }
        post(":id/repository/files/:file_path", requirements: FILE_ENDPOINT_REQUIREMENTS) { {} }
        get(":id/repository/branches/:branch", requirements: BRANCH_ENDPOINT_REQUIREMENTS) { {} }
        delete(":id/repository/branches/:branch", requirements: BRANCH_ENDPOINT_REQUIREMENTS) { {} }
        get(":id/repository/tags/:tag_name", requirements: TAG_ENDPOINT_REQUIREMENTS) { {} }
        get(":id/repository/commits") { [] }
        get(":id/repository/commits/:sha", requirements: COMMIT_ENDPOINT_REQUIREMENTS) { {} }
        get(":id/repository/commits/:sha/refs", requirements: COMMIT_ENDPOINT_REQUIREMENTS) { [] }
        get(":id/merge_requests") { [] }
        get(":id/merge_requests/:merge_request_iid/changes") { {} }
        put(":id/merge_requests/:merge_request_iid/merge") { {} }
        get(":id/issues/:issue_iid") { {} }
        post(":id/issues") { {} }
        get(":id/jobs") { [] }
        get(":id/jobs/:job_id/artifacts") { {} }
        get(":id/jobs/artifacts/:ref_name/download", requirements: NAMESPACE_OR_PROJECT_REQUIREMENTS.merge(ref_name: NO_SLASH_URL_PART_REGEX)) { {} }
        get(":id/pipelines/:pipeline_id") { {} }
        post(":id/pipeline") { {} }
        get(":id/packages/npm/*package_name/-/*file_name", format: false) { {} }
        get(":id/packages/npm/*package_name", format: false) { {} }
        put(":id/packages/npm/:package_name", requirements: NAMESPACE_OR_PROJECT_REQUIREMENTS.merge(package_name: NO_SLASH_URL_PART_REGEX)) { {} }
        get(":id/packages/maven/*path/:file_name", requirements: NAMESPACE_OR_PROJECT_REQUIREMENTS.merge(file_name: NO_SLASH_URL_PART_REGEX)) { {} }
        get(":id/packages/generic/:package_name/*package_version/:file_name",
            requirements: NAMESPACE_OR_PROJECT_REQUIREMENTS.merge(package_name: NO_SLASH_URL_PART_REGEX, file_name: NO_SLASH_URL_PART_REGEX)) { {} }
        put(":id/packages/generic/:package_name/*package_version/:file_name",
            requirements: NAMESPACE_OR_PROJECT_REQUIREMENTS.merge(package_name: NO_SLASH_URL_PART_REGEX, file_name: NO_SLASH_URL_PART_REGEX)) { {} }
        get(":id/packages/conan/v1/conans/:package_name/:package_version/:package_username/:package_channel", requirements: CONAN_RECIPE) { {} }
        get(":id/packages/conan/v1/conans/:package_name/:package_version/:package_username/:package_channel/digest", requirements: CONAN_RECIPE) { {} }
      end

      resource :groups, requirements: NAMESPACE_OR_PROJECT_REQUIREMENTS do
        get(":id") { {} }
        get(":id/projects") { [] }
        get(":id/subgroups") { [] }
        get(":id/members") { [] }
      end

      resource :namespaces, requirements: NAMESPACE_OR_PROJECT_REQUIREMENTS do
        get(":id") { {} }
        get(":id/exists") { {} }
      end

      resource :users, requirements: { user_id: NO_SLASH_URL_PART_REGEX } do
        get(":user_id/projects") { [] }
      end
    end
  end
end
