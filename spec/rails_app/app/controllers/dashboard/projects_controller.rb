# frozen_string_literal: true

module Dashboard
  class ProjectsController < ApplicationController
    actions :index, :starred
  end
end
