# frozen_string_literal: true

class ProjectsController < ApplicationController
  actions :new, :create, :show, :edit, :update, :destroy
end
